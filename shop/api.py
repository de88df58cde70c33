"""The basket's JSON API, used by the shop's own page scripts (and by tests).

    GET    /api/basket                  the basket
    POST   /api/basket/items            {"product": "<slug>", "quantity": n}  adds n
    PATCH  /api/basket/items/<slug>     {"quantity": n}                       sets n (0 removes)
    DELETE /api/basket/items/<slug>                                           removes the line

Every answer is JSON. Errors: 400 {"error": "invalid", "fields": {...}}, 409
{"error": "insufficient_stock", "fields": {"quantity": [...]}}, 413, 415, 404, 405; a
request that fails writes nothing.

CSRF: the API is authenticated by the session cookie, so it keeps Django's CSRF check like
any form post: page scripts send the `X-CSRFToken` header (the token is in the page's
`<meta name="csrf-token">`). It is not meant for third-party clients.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.validators import slug_re
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from config.sessions import shown_as_is_if_session_interrupted
from shop.buy_now import KeyReused, buy_now_place
from shop.checkout_errors import CheckoutError
from shop.decline_throttle import DeclinesThrottled, decline_try
from shop.models import Basket, BasketLine, Product
from shop.order_input import (
    KEY_REUSED_DETAIL,
    InvalidInput,
    OrderInput,
    client_ip,
    idempotency_key_parse,
    json_body_check,
    order_input_parse,
)
from shop.order_links import order_grant_access
from shop.selectors import basket_get_for_request, basket_view
from shop.services import (
    MAX_LINE_QUANTITY,
    BasketMoved,
    InsufficientStock,
    InvalidQuantity,
    ProductUnavailable,
    basket_add,
    basket_get_or_create_for_request,
    basket_remember,
    basket_remove,
    basket_set_quantity,
)

# A basket item is a few dozen bytes; anything much larger is not a basket item.
MAX_BODY_BYTES = 4 * 1024
SLUG_MAX_LENGTH = Product._meta.get_field("slug").max_length


class ApiError(Exception):
    def __init__(self, status: int, error: str, fields: dict[str, list[str]] | None = None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.fields = fields

    def response(self) -> JsonResponse:
        body: dict[str, Any] = {"error": self.error}
        if self.fields is not None:
            body["fields"] = self.fields
        return JsonResponse(body, status=self.status)


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid", {field: [message]})


def _read_json(request: HttpRequest) -> dict[str, Any]:
    content_type = request.content_type or ""
    if content_type.lower() != "application/json":
        raise ApiError(415, "unsupported_media_type", {"content_type": ["Send application/json."]})
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", {"body": [f"At most {MAX_BODY_BYTES} bytes."]})
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError(413, "too_large", {"body": [f"At most {MAX_BODY_BYTES} bytes."]})
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", {"body": [f"At most {MAX_BODY_BYTES} bytes."]})
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _invalid("body", "Malformed JSON.")
    if not isinstance(data, dict):
        raise _invalid("body", "Send a JSON object.")
    return data


def _quantity(data: dict[str, Any], *, minimum: int) -> int:
    if "quantity" not in data:
        raise _invalid("quantity", "This field is required.")
    quantity = data["quantity"]
    # bool is an int in Python, and 2.0 is a float: neither is a quantity.
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise _invalid("quantity", "Must be a whole number.")
    if quantity < minimum:
        raise _invalid("quantity", f"Must be at least {minimum}.")
    if quantity > MAX_LINE_QUANTITY:
        raise _invalid("quantity", f"Must be at most {MAX_LINE_QUANTITY}.")
    return quantity


def _product(slug: Any) -> Product:
    if slug is None:
        raise _invalid("product", "This field is required.")
    # The slug's own form, as the product's URL takes it, before any query: a JSON string may
    # hold what no query can encode (a lone surrogate, "\ud800").
    if not isinstance(slug, str) or len(slug) > SLUG_MAX_LENGTH or not slug_re.match(slug):
        raise _invalid("product", "Must be a product slug.")
    product = Product.objects.on_sale().filter(slug=slug).first()
    if product is None:
        raise _invalid("product", "No such product on sale.")
    return product


def _basket_response(request: HttpRequest) -> JsonResponse:
    return JsonResponse(basket_view(basket=basket_get_for_request(request)).as_json())


def _change_basket(request: HttpRequest, change) -> JsonResponse:
    try:
        with transaction.atomic():
            basket = basket_get_or_create_for_request(request)
            changed = change(basket)
    except InsufficientStock as exc:
        return JsonResponse(
            {"error": "insufficient_stock", "fields": {"quantity": [str(exc)]}, "available": exc.available},
            status=409,
        )
    except InvalidQuantity as exc:
        return _invalid("quantity", str(exc)).response()
    except ProductUnavailable as exc:
        return _invalid("product", str(exc)).response()
    except BasketMoved as exc:
        return _basket_moved(exc)
    if isinstance(changed, BasketLine) and changed.basket_id != basket.pk:
        # Added to the account's basket the guest's joined on a sign-in meanwhile: that is the
        # basket now, and what the answer shows.
        return JsonResponse(basket_view(basket=Basket.objects.get(pk=changed.basket_id)).as_json())
    basket_remember(request, basket)
    return _basket_response(request)


def _basket_moved(exc: BasketMoved) -> JsonResponse:
    # Nothing changed: the shopper is to look at the basket as it is now, as after a sign-in.
    return JsonResponse({"error": "basket_changed", "detail": str(exc)}, status=409)


def _method_not_allowed(allowed: list[str]) -> JsonResponse:
    response = JsonResponse({"error": "method_not_allowed"}, status=405)
    response["Allow"] = ", ".join(allowed)
    return response


@csrf_exempt  # it only reads: another method gets its 405, not the CSRF check's 403
@never_cache  # one shopper's basket: no cache (a browser's, a proxy's) may keep or share it
def basket_detail(request: HttpRequest) -> JsonResponse:
    if request.method != "GET":
        return _method_not_allowed(["GET"])
    return _basket_response(request)


@never_cache
def basket_items(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return _method_not_allowed(["POST"])
    try:
        data = _read_json(request)
        product = _product(data.get("product"))
        quantity = _quantity(data, minimum=1)
    except ApiError as exc:
        return exc.response()
    return _change_basket(request, lambda basket: basket_add(basket=basket, product=product, quantity=quantity))


@never_cache
def basket_item(request: HttpRequest, slug: str) -> JsonResponse:
    if request.method not in ("PATCH", "DELETE"):
        return _method_not_allowed(["PATCH", "DELETE"])
    basket = basket_get_for_request(request)
    product = Product.objects.filter(slug=slug).first()
    if basket is None or product is None or not basket.lines.filter(product=product).exists():
        return JsonResponse({"error": "not_found"}, status=404)
    if request.method == "DELETE":
        try:
            basket_remove(basket=basket, product=product)
        except BasketMoved as exc:
            return _basket_moved(exc)
        return _basket_response(request)
    try:
        quantity = _quantity(_read_json(request), minimum=0)
    except ApiError as exc:
        return exc.response()
    return _change_basket(request, lambda b: basket_set_quantity(basket=b, product=product, quantity=quantity))


# --- Buy now, the monolith's way ----------------------------------------------------------
# `POST /shop/<category>/<product>/orders` is how the shop sold a product before the hot path
# existed: the order is placed with the legacy API while the buyer waits. When a product's
# sale is open, config.buy_now sends the same request to the hot path instead (202 and a
# queue), whichever origin the edge chose. One contract for both (shop.order_input): the same
# body and `Idempotency-Key` header, the same verdicts, the same error shape.


def buy_now_json(payload: dict, status: int, headers: dict | None = None) -> JsonResponse:
    """The buy-now's JSON answer, never cached; config.buy_now answers in it too."""
    response = JsonResponse(payload, status=status)
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _buy_now_input(request: HttpRequest, *, category: str, product: str) -> tuple[str, Product, OrderInput]:
    """The key, the product and the body, checked together so that one 400 names every bad field
    and a buyer corrects them in one go. Raises InvalidInput (UnsupportedMediaType, 415, for a
    body not sent as JSON, which is then not read)."""
    fields: dict[str, list[str]] = {}
    try:
        key = idempotency_key_parse(request.headers.get("Idempotency-Key"))
    except InvalidInput as exc:
        fields.update(exc.fields)
    if not fields:  # a missing key is named first, as the hot path names it
        json_body_check(request)
    item = Product.objects.on_sale().select_related("category").filter(slug=product).first()
    if item is None or item.category.slug != category:
        fields["product"] = ["No such product on sale."]
    try:
        data = order_input_parse(request.body, per_order_limit=MAX_LINE_QUANTITY)
    except InvalidInput as exc:
        fields.update(exc.fields)
    if fields:
        raise InvalidInput(fields)
    return key, item, data


@csrf_exempt  # a JSON API: the Idempotency-Key is required instead of a CSRF token
# Signed out in another tab meanwhile: a placed order is still answered 201 (without the
# session's grant, lost with the session), not 400, which a client does not retry.
@shown_as_is_if_session_interrupted
def product_order(request: HttpRequest, category: str, product: str) -> JsonResponse:
    if request.method != "POST":
        return _method_not_allowed(["POST"])
    try:
        key, item, data = _buy_now_input(request, category=category, product=product)
    except InvalidInput as exc:
        return buy_now_json(exc.payload(), exc.status)
    address = client_ip(request)
    try:
        placed = buy_now_place(
            product=item,
            idempotency_key=key,
            data=data,
            customer=request.user,
            card_sent=lambda: decline_try(address=address, email=data.email),
        )
    except DeclinesThrottled as exc:
        return buy_now_json({"error": "throttled", "detail": str(exc)}, 429, {"Retry-After": str(exc.retry_after)})
    except KeyReused:
        return buy_now_json({"error": "idempotency_key_reused", "detail": KEY_REUSED_DETAIL}, 422)
    except CheckoutError as exc:
        headers = {"Retry-After": "1"} if exc.status == 503 else {}
        if exc.replayed:
            headers["Idempotent-Replayed"] = "true"
        return buy_now_json({"error": exc.code, "detail": exc.message, "fields": exc.fields}, exc.status, headers)
    order = placed.order
    headers = {}
    if placed.original:
        order_grant_access(request, order)
    else:
        headers["Idempotent-Replayed"] = "true"
    body = {"number": order.number, "status": "complete", "order_url": f"/orders/{order.number}/"}
    return buy_now_json(body, 201, headers)
