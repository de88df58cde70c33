"""The hot path's published contract: a hand-kept OpenAPI 3 schema of one hot product's order
URLs (buy now, stock, status), served at `/shop/<category>/<product>/orders/schema`.

The paths are the product's own and the quantity's maximum is its sale's per-order limit, read
when the schema is asked for: the document says what this product's URLs take right now."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from orders import selectors, services
from orders.inputs import IDEMPOTENCY_KEY_MAX
from orders.models import OrderStage, OrderStatus
from shop.api_schema import (
    INVALID,
    METHOD_NOT_ALLOWED,
    OPENAPI_VERSION,
    RETRY_AFTER,
    TOO_LARGE,
    UNAVAILABLE,
    UNSUPPORTED,
    error_response,
    json_response,
)

# As orders.urls routes a status URL: anything else there is not found.
NUMBER_PATTERN = r"^T[0-9]{1,18}$"
STATUS_TOKEN_PATTERN = r"^[-A-Za-z0-9_]{16,64}$"  # noqa: S105 - a URL pattern, not a secret
# Spaces and dashes between the digits are dropped; then 12 to 19 digits (and Luhn's check).
CARD_PATTERN = r"^[- ]*(?:[0-9][- ]*){12,19}$"
# Printable ASCII with something besides spaces, which are trimmed.
KEY_PATTERN = r"^[ -~]*[!-~][ -~]*$"


def _order_body(per_order_limit: int) -> dict[str, Any]:
    text = {"type": "string", "pattern": r"\S"}
    return {
        "type": "object",
        "required": ["quantity", "customer", "payment"],
        "properties": {
            "quantity": {"type": "integer", "minimum": 1, "maximum": per_order_limit},
            "customer": {
                "type": "object",
                "required": ["name", "email"],
                "properties": {
                    "name": {**text, "description": "At most 200 characters once trimmed, all printable."},
                    "email": {**text, "format": "email", "description": "At most 254 characters once trimmed."},
                },
            },
            "payment": {
                "type": "object",
                "required": ["card_number"],
                "properties": {
                    "card_number": {
                        "type": "string",
                        "pattern": CARD_PATTERN,
                        "description": "The card's digits; spaces and dashes are ignored. Never stored whole.",
                    }
                },
            },
        },
        "example": {
            "quantity": 1,
            "customer": {"name": "Ann Angler", "email": "ann@example.com"},
            "payment": {"card_number": "4242424242424242"},
        },
    }


def _order_create(per_order_limit: int) -> dict[str, Any]:
    replayed = {"Idempotent-Replayed": {"required": False, "schema": {"type": "string", "enum": ["true"]}}}
    accepted = {
        "type": "object",
        "required": ["number", "status", "status_url"],
        "properties": {
            "number": {"type": "string", "pattern": NUMBER_PATTERN},
            "status": {"type": "string", "enum": ["processing"]},
            "status_url": {"type": "string"},
        },
    }
    placed = {
        "type": "object",
        "required": ["number", "status", "order_url"],
        "properties": {
            "number": {"type": "string"},
            "status": {"type": "string", "enum": ["complete"]},
            "order_url": {"type": "string"},
        },
    }
    refused = "sold_out (with `remaining`), sale_not_started, sale_ended; out_of_stock from the shop's own buy-now."
    return {
        "operationId": "order_create",
        "summary": "Buy now: the order is accepted at once (202) and placed by the workers.",
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": True,
                "description": "A fresh random value per order; the same key and body again get the same answer.",
                "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX, "pattern": KEY_PATTERN},
                "example": "0b6f3c9e-5d1a-4f0e-9b7c-2f1d8e4a6c35",
            }
        ],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _order_body(per_order_limit)}}},
        "responses": {
            "202": json_response(
                "Accepted: the units are reserved and the order will be placed; follow status_url.",
                accepted,
                {"Location": {"required": True, "schema": {"type": "string"}}, "Retry-After": RETRY_AFTER, **replayed},
            ),
            "201": json_response(
                "This key's order was already placed by the shop's own buy-now (before the sale opened).",
                placed,
                replayed,
            ),
            "400": INVALID,
            "402": error_response(
                "The card was declined (the shop's own buy-now); the same key and body again get it again.",
                codes=["card_declined"],
                headers=replayed,
            ),
            "404": error_response("Not a hot product, or not on sale.", codes=["not_hot", "not_on_sale", "not_found"]),
            "405": METHOD_NOT_ALLOWED,
            "409": error_response(refused),
            "413": TOO_LARGE,
            "415": UNSUPPORTED,
            "422": error_response("This Idempotency-Key was used for another body.", codes=["idempotency_key_reused"]),
            "429": error_response(
                "Too many orders, or too many cards declined, from this address or email.",
                codes=["throttled"],
                headers={"Retry-After": RETRY_AFTER},
            ),
            "503": UNAVAILABLE,
        },
    }


def _stock() -> dict[str, Any]:
    body = {
        "type": "object",
        "required": ["remaining", "allocated", "state", "price_cents", "starts_at"],
        "properties": {
            "remaining": {"type": "integer", "minimum": 0},
            "allocated": {"type": "integer", "minimum": 0},
            "state": {"type": "string", "enum": ["open", "not_started", "ended", "sold_out"]},
            "price_cents": {"type": "integer", "minimum": 1, "description": "The unit price a 202 charges now."},
            "starts_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "When the sale starts taking orders; null: from its opening.",
            },
        },
    }
    return {
        "operationId": "stock_get",
        "summary": "The sale's live stock, which the buy-now page refreshes itself with.",
        "responses": {
            "200": json_response("The sale's figures.", body),
            "404": error_response("Not a hot product, or not on sale.", codes=["not_hot", "not_on_sale"]),
            "405": METHOD_NOT_ALLOWED,
            "503": UNAVAILABLE,
        },
    }


def _status() -> dict[str, Any]:
    body = {
        "type": "object",
        "required": ["number", "status", "stage", "detail"],
        "properties": {
            "number": {"type": "string", "pattern": NUMBER_PATTERN},
            "status": {"type": "string", "enum": list(OrderStatus.values)},
            "stage": {"type": "string", "enum": list(OrderStage.values)},
            "detail": {"type": "string"},
        },
    }
    path_parameter = {"in": "path", "required": True}
    return {
        "parameters": [
            {**path_parameter, "name": "number", "schema": {"type": "string", "pattern": NUMBER_PATTERN}},
            {**path_parameter, "name": "token", "schema": {"type": "string", "pattern": STATUS_TOKEN_PATTERN}},
        ],
        "get": {
            "operationId": "order_status",
            "summary": "An accepted order's progress (the status_url of its 202).",
            "responses": {
                "200": json_response(
                    "The order's status; Retry-After while it is processing.",
                    body,
                    {"Retry-After": {**RETRY_AFTER, "required": False}},
                ),
                "404": error_response("No such order for this product, or a wrong token.", codes=["not_found"]),
                "405": METHOD_NOT_ALLOWED,
                "503": UNAVAILABLE,
            },
        },
    }


def hot_path_schema(*, category: str, product: str, per_order_limit: int) -> dict[str, Any]:
    prefix = f"/shop/{category}/{product}"
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": f"Hot path: {product}",
            "version": "1.0.0",
            "description": "Orders for a product on sale: accepted at once, placed by workers, followed "
            "by polling. Every error is {error, detail, fields?} with fields as {name: [messages]}.",
        },
        "paths": {
            f"{prefix}/orders": {"post": _order_create(per_order_limit)},
            f"{prefix}/stock": {"get": _stock()},
            f"{prefix}/orders/{{number}}/{{token}}": _status(),
        },
    }


@csrf_exempt  # it only reads: another method gets its 405, not the CSRF check's 403
@require_safe
def api_schema(request: HttpRequest, category: str, product: str) -> JsonResponse:
    data = selectors.hot_product_get(category=category, product=product)
    refusal = services.hot_product_refusal(data)
    if isinstance(refusal, services.NotHot | services.NotOnSale):
        response = JsonResponse(refusal.payload, status=refusal.status)
    else:
        schema = hot_path_schema(category=category, product=product, per_order_limit=data["per_order_limit"])
        response = JsonResponse(schema, json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = "no-store"
    return response
