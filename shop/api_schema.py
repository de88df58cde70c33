"""The basket API's published contract: a hand-kept OpenAPI 3 schema served at `/api/schema`,
built from the same limits the code enforces, and the error shape every API here shares."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from shop.services import MAX_LINE_QUANTITY

OPENAPI_VERSION = "3.0.3"
# Django's `<slug:...>` converter: a path segment outside it is never routed (404).
SLUG_PATTERN = "^[-a-zA-Z0-9_]+$"


def error_schema(*, codes: list[str] | None = None, **extra: dict) -> dict[str, Any]:
    """`{"error", "detail", "fields"?}`: `fields` names each field at fault with a list of
    messages; `extra` adds what one error says beside (such as `available`)."""
    error: dict[str, Any] = {"type": "string", "minLength": 1}
    if codes:
        error["enum"] = codes
    return {
        "type": "object",
        "required": ["error", "detail", *extra],
        "properties": {
            "error": error,
            "detail": {"type": "string"},
            "fields": {
                "type": "object",
                "additionalProperties": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            },
            **extra,
        },
    }


def json_response(description: str, schema: dict, headers: dict | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def error_response(description: str, *, codes: list[str] | None = None, headers=None, **extra) -> dict[str, Any]:
    return json_response(description, error_schema(codes=codes, **extra), headers)


RETRY_AFTER = {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}
ALLOW = {"required": True, "schema": {"type": "string"}}

# Answers any API URL may give, whatever its view: Django and the error middleware give them.
METHOD_NOT_ALLOWED = error_response("This URL does not take that method.", headers={"Allow": ALLOW})
UNAVAILABLE = error_response("A backing service (database, cache) is away; nothing was changed.")
TOO_LARGE = error_response("The body is larger than the API reads.")
UNSUPPORTED = error_response("The body is not sent as application/json.")
INVALID = error_response("A field is invalid; `fields` names each one.")
CSRF = error_response(
    "The CSRF check failed: send the csrftoken cookie and the same token in X-CSRFToken.",
    codes=["csrf_failed", "forbidden"],
)


def _basket() -> dict[str, Any]:
    line = {
        "type": "object",
        "required": ["product", "title", "quantity", "unit_price_cents", "total_cents", "stock", "url"],
        "properties": {
            "product": {"type": "string"},
            "title": {"type": "string"},
            "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_LINE_QUANTITY},
            "unit_price_cents": {"type": "integer", "minimum": 0},
            "total_cents": {"type": "integer", "minimum": 0},
            "stock": {"type": "integer", "description": "Units the shopper may buy (on hand less held)."},
            "url": {"type": "string"},
        },
    }
    return {
        "type": "object",
        "required": ["lines", "count", "total_cents"],
        "properties": {
            "lines": {"type": "array", "items": line},
            "count": {"type": "integer", "minimum": 0},
            "total_cents": {"type": "integer", "minimum": 0},
        },
    }


def _quantity(minimum: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": MAX_LINE_QUANTITY}


def _write(summary: str, operation_id: str, body: dict | None, *, codes: dict[str, dict]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "description": "Send the csrftoken cookie's value in the X-CSRFToken header; without it, 403.",
        "responses": {"200": json_response("The basket after the change.", _basket()), **codes, "403": CSRF},
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return operation


def basket_api_schema() -> dict[str, Any]:
    """The contract of shop.api's basket endpoints, kept beside them: a change to a limit there
    changes it here, and tests.test_schemas runs the API against this document."""
    short = error_response(
        "Not enough stock for the quantity asked; `available` says how many there are.",
        codes=["insufficient_stock"],
        available={"type": "integer"},
    )
    not_found = error_response("No line of this product in the basket.", codes=["not_found"])
    body_errors = {"400": INVALID, "413": TOO_LARGE, "415": UNSUPPORTED}
    add = {
        "type": "object",
        "required": ["product", "quantity"],
        "properties": {"product": {"type": "string", "minLength": 1}, "quantity": _quantity(1)},
        "example": {"product": "spinning-reel", "quantity": 1},
    }
    change = {
        "type": "object",
        "required": ["quantity"],
        "properties": {"quantity": {**_quantity(0), "description": "0 removes the line."}},
        "example": {"quantity": 2},
    }
    slug = {
        "name": "slug",
        "in": "path",
        "required": True,
        "description": "The product's slug.",
        "schema": {"type": "string", "pattern": SLUG_PATTERN},
        "example": "spinning-reel",
    }
    item = {
        "parameters": [slug],
        "patch": _write(
            "Sets a line's quantity (0 removes it).",
            "basket_item_set",
            change,
            codes={**body_errors, "404": not_found, "405": METHOD_NOT_ALLOWED, "409": short, "503": UNAVAILABLE},
        ),
        "delete": _write(
            "Removes a line.",
            "basket_item_remove",
            None,
            codes={"404": not_found, "405": METHOD_NOT_ALLOWED, "503": UNAVAILABLE},
        ),
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Basket API",
            "version": "1.0.0",
            "description": "The shopper's basket, for the shop's own page scripts. The session cookie "
            "names the basket; writes need Django's CSRF token (cookie and X-CSRFToken header). "
            "Every error is {error, detail, fields?} with fields as {name: [messages]}.",
        },
        "paths": {
            "/api/basket": {
                "get": {
                    "operationId": "basket_get",
                    "summary": "The basket (empty when the session has none).",
                    "responses": {
                        "200": json_response("The basket.", _basket()),
                        "405": METHOD_NOT_ALLOWED,
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/api/basket/items": {
                "post": _write(
                    "Adds units of a product to the basket.",
                    "basket_item_add",
                    add,
                    codes={**body_errors, "405": METHOD_NOT_ALLOWED, "409": short, "503": UNAVAILABLE},
                )
            },
            "/api/basket/items/{slug}": item,
        },
    }


@csrf_exempt  # it only reads: another method gets its 405, not the CSRF check's 403
@require_safe
def api_schema(request: HttpRequest) -> JsonResponse:
    return JsonResponse(basket_api_schema(), json_dumps_params={"ensure_ascii": False})
