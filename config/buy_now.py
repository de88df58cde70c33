"""The monolith's `POST /shop/<category>/<product>/orders`, composed of both origins: the hot
path's acceptance while the product's sale is open or when the hot path already knows the
Idempotency-Key, else the monolith's own buy-now. The key decides, not the route: a buyer's
retry lands on whichever origin the edge chose at that moment, and gets the one order.

It lives in config because shop never imports orders; config may compose both."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from redis.exceptions import RedisError

from config.headers import request_header
from orders import acceptance
from orders import selectors as order_selectors
from orders import views as order_views
from orders.models import HotOrder
from shop import api as shop_api
from shop.order_input import KEY_REUSED_DETAIL, InvalidInput, order_input_parse


def sale_is_open(*, category: str, product: str) -> bool:
    """While a product's sale is open, its allocation is the only gate for its units, so every
    order for it goes through the hot path's reservation, whichever deployment received it."""
    try:
        data = order_selectors.hot_product_get(category=category, product=product)
    except RedisError:
        # The cache away: the shop's own buy-now goes on without it, as its checkout does (it
        # answered 503 for every product, on sale or not), and a sale open is read from the
        # database, so that its units are still sold only through its reservation.
        data = order_selectors.hot_product_from_database(category=category, product=product)
    return bool(data) and data["is_hot"] and order_selectors.hot_product_window(data) == "open"


def _request_key(request: HttpRequest) -> str:
    return (request_header(request, "Idempotency-Key") or "").strip()


def key_known_to_hot_path(request: HttpRequest) -> bool:
    key = _request_key(request)
    return bool(key) and HotOrder.objects.filter(idempotency_key=key).exists()


# The hot path's refusals that mean "no sale is open for this product now": the product as
# this process last cached it (for up to a second) still looked on sale when the merchant had
# just closed it. The monolith's own buy-now then takes the order, as it would a moment later.
NO_SALE_NOW = {"not_hot", "sale_not_started", "sale_ended"}


@csrf_exempt  # both views it serves are JSON APIs keyed by Idempotency-Key, not by cookies
def product_order(request: HttpRequest, category: str, product: str) -> HttpResponse:
    if request.method == "POST" and (
        sale_is_open(category=category, product=product) or key_known_to_hot_path(request)
    ):
        response = order_views.order_create(request, category=category, product=product)
        if not _no_sale_now(response):
            return response
        known = HotOrder.objects.select_related("product__category").filter(idempotency_key=_request_key(request))
        if order := known.first():
            return _known_key_answer(request, order, product=product)
    return shop_api.product_order(request, category=category, product=product)


def _known_key_answer(request: HttpRequest, order: HotOrder, *, product: str) -> HttpResponse:
    """A key the hot path took, sent for a product it does not sell now: the key belongs to that
    order wherever it is sent, so another product or body is 422 (as on either origin), and the
    same body gets its order, as the hot path answers a replay; never a second order."""
    try:
        data = order_input_parse(request.body)
    except InvalidInput as exc:
        return shop_api.buy_now_json(exc.payload(), exc.status)
    if not acceptance.order_body_matches(order, data, product_slug=product):
        return shop_api.buy_now_json({"error": "idempotency_key_reused", "detail": KEY_REUSED_DETAIL}, 422)
    url = acceptance.status_url(
        category=order.product.category.slug, product=order.product.slug, number=order.number, token=order.token
    )
    headers = {"Location": url, "Retry-After": str(order_views.RETRY_AFTER_SECONDS), "Idempotent-Replayed": "true"}
    return shop_api.buy_now_json({"number": order.number, "status": "processing", "status_url": url}, 202, headers)


def _no_sale_now(response: HttpResponse) -> bool:
    if response.status_code not in (404, 409) or response.get("Content-Type") != "application/json":
        return False
    try:
        return json.loads(response.content).get("error") in NO_SALE_NOW
    except ValueError:
        return False
