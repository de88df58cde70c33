"""HTTP interface of the hot path: the buy-now page, order acceptance, status polling."""

from __future__ import annotations

import json
import logging
import time

from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from config.headers import request_header
from legacy_client.references import reference_for_key
from orders import acceptance, selectors, services
from orders.inputs import (
    KEY_REUSED_DETAIL,
    InvalidInput,
    OrderInput,
    client_ip,
    idempotency_key_parse,
    json_body_check,
    order_input_parse,
)
from orders.models import SaleState
from readmodels.answers import answer_record
from readmodels.selectors import sale_remaining
from shop.buy_now import refusal_matches
from shop.checkout_errors import CheckoutDeclined
from shop.models import BuyNowRefusal, PlacedOrder

RETRY_AFTER_SECONDS = 2
ENDED_SALE_STATES = (SaleState.CLOSING, SaleState.CLOSED)
_request_log = logging.getLogger("django.request")


def _json(payload: dict, status: int = 200, headers: dict | None = None) -> HttpResponse:
    body = json.dumps(payload, cls=DjangoJSONEncoder).encode()
    return _json_encoded(body, status=status, headers=headers, detail_given="detail" in payload)


def _json_encoded(body: bytes, *, status: int, headers: dict | None = None, detail_given: bool) -> HttpResponse:
    # JsonResponse's body, with its charset named: Django otherwise finds it by a regular
    # expression over the Content-Type, a tenth of a sold-out answer's own CPU.
    response = HttpResponse(body, content_type="application/json", status=status, charset="utf-8")
    response.detail_given = detail_given  # the API's error middleware need not parse it
    if 400 <= status < 500 and not _request_log.isEnabledFor(logging.WARNING):
        # Django would log it as a warning that the settings drop (django.request), after
        # escaping its arguments: most of a sale's answers are 409s.
        response._has_been_logged = True
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _invalid(exc: InvalidInput) -> HttpResponse:
    return _json(exc.payload(), status=exc.status)


def _monolith_answer(*, idempotency_key: str, data: OrderInput, product_slug: str) -> HttpResponse | None:
    """The monolith's first answer when it already placed this key's order (the route was off
    when the buyer first sent it): the retry gets that order, never a second one. The session
    gets no access from a replay; the order page stays the placing session's."""
    placed = (
        PlacedOrder.objects.filter(reference=reference_for_key(idempotency_key)).only("number", "fingerprint").first()
    )
    if placed is None:
        return _monolith_refusal(idempotency_key=idempotency_key, data=data, product_slug=product_slug)
    # A receipt not stamped yet (its request between the receipt's commit and its stamp, or
    # killed there) is the key's order all the same: the hot path reads the storefront's
    # tables and never writes them, so the stamp stays the monolith's to make.
    if placed.fingerprint and not data.fingerprint_matches(placed.fingerprint, product_slug=product_slug):
        return _json({"error": "idempotency_key_reused", "detail": KEY_REUSED_DETAIL}, status=422)
    number = placed.number
    body = {"number": number, "status": "complete", "order_url": f"/orders/{number}/"}
    return _json(body, status=201, headers={"Idempotent-Replayed": "true"})


def _monolith_refusal(*, idempotency_key: str, data: OrderInput, product_slug: str) -> HttpResponse | None:
    """The monolith's 402 when it had this key's card declined (the route was off then): the
    same body is told so again, as the monolith tells it, and the card is not sent again."""
    refused = BuyNowRefusal.objects.filter(reference=reference_for_key(idempotency_key)).first()
    if refused is None:
        return None
    if not refusal_matches(refused, data, product_slug=product_slug):
        return _json({"error": "idempotency_key_reused", "detail": KEY_REUSED_DETAIL}, status=422)
    declined = CheckoutDeclined(refused.detail)
    body = {"error": declined.code, "detail": declined.message, "fields": declined.fields}
    return _json(body, status=declined.status)


def _refused(exc: services.OrderRefused) -> HttpResponse:
    return _json(exc.payload, status=exc.status, headers=exc.headers)


# What most of a sold-out stampede is told (acceptance.sold_out_known), encoded once.
_SOLD_OUT_KNOWN_BODY = json.dumps(services.SoldOut("Sold out.", remaining=0).payload).encode()
_SOLD_OUT_KNOWN_LENGTH = str(len(_SOLD_OUT_KNOWN_BODY))


def _over_limit_but_placed(request, *, key: str, product: dict) -> HttpResponse | None:
    """A body over the sale's per-order limit whose key already has an order gets that order's
    answer, as any retry does: the hot path's (accepted under a larger limit, or 422 for another
    body), or the monolith's (placed before the sale opened). None for a key never used."""
    try:
        order_input = order_input_parse(request.body)
    except InvalidInput:
        return None
    existing = selectors.order_by_key(idempotency_key=key)
    if existing is None:
        return _monolith_answer(idempotency_key=key, data=order_input, product_slug=product["slug"])
    if not acceptance.order_body_matches(existing, order_input, product_slug=product["slug"]):
        return _json({"error": "idempotency_key_reused", "detail": KEY_REUSED_DETAIL}, status=422)
    ordered = existing.product
    return _accepted_answer(existing, category=ordered.category.slug, product=ordered.slug, replayed=True)


def _accepted_answer(order, *, category: str, product: str, replayed: bool) -> HttpResponse:
    """The 202 an accepted order is answered with, the first time and on every replay."""
    url = acceptance.status_url(category=category, product=product, number=order.number, token=order.token)
    headers = {"Location": url, "Retry-After": str(RETRY_AFTER_SECONDS)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return _json({"number": order.number, "status": "processing", "status_url": url}, status=202, headers=headers)


def _remaining(data: dict) -> int:
    """ "Only N left": the inventory view, fed by the log; the allocation until it has seen the sale."""
    remaining = sale_remaining(product=data["slug"])
    return selectors.allocation_remaining(allocation_id=data["allocation_id"]) if remaining is None else remaining


def buy_now_context(data: dict, *, api_url: str = "") -> dict:
    """What the sale's page (orders/buy_now.html) shows of a hot product's data: the hot path
    renders it for each request, the edge's mini-site once, as a static file whose script
    refreshes the stock and posts to the hot path at `api_url` (edge.exporters.minisite)."""
    remaining = _remaining(data) if data.get("allocation_id") else 0
    # What the banner, the tag and the stock bar say: the window, or sold out within it (as
    # the stock figures the page refreshes itself with say it). A sale switched off has ended.
    window = selectors.hot_product_window(data) if data["is_hot"] else "ended"
    state = "sold_out" if window == "open" and remaining == 0 else window
    prefix = f"{api_url}/shop/{data['category']}/{data['slug']}"
    return {
        "product": data,
        "remaining": remaining,
        "allocated": data["allocated"],
        "percent_left": round(100 * remaining / data["allocated"]) if data["allocated"] else 0,
        "window": window,
        "state": state,
        "limits": range(1, data["per_order_limit"] + 1),
        "orders_url": f"{prefix}/orders",
        "stock_url": f"{prefix}/stock",
    }


@require_safe
def buy_now(request, category: str, product: str):
    data = selectors.hot_product_get(category=category, product=product)
    if data is None or not data["is_on_sale"]:
        raise Http404("No hot product here")
    if not data["is_hot"] and data.get("sale_state") not in ENDED_SALE_STATES:
        raise Http404("No sale of this product has opened")
    # A sale closed while the edge still sends its pages here (nginx's or CloudFront's routes
    # until the next export) is shown as ended: the buyer is told the sale is over, not that
    # the product is gone.
    response = render(request, "orders/buy_now.html", buy_now_context(data))
    response["Cache-Control"] = "no-store"
    return response


# Read-only JSON: another method gets its 405, not the CSRF check's 403.
@csrf_exempt
@require_safe
def stock(request, category: str, product: str):
    """The live stock state the buy-now page refreshes itself with, the price a 202 charges now
    and the sale's start: a page kept open across a sale's close and a reopening at another
    price, or the mini-site's page exported before a price change, shows that price, not its
    own; a merchant may move the start while the sale is open, and the page then says when to
    come back."""
    data = selectors.hot_product_get(category=category, product=product)
    refusal = services.hot_product_refusal(data)
    if isinstance(refusal, services.NotHot | services.NotOnSale):
        return _refused(refusal)
    remaining = _remaining(data)
    state = selectors.hot_product_window(data)
    if state == "open" and remaining == 0:
        state = "sold_out"
    starts_at = data["starts_at"].isoformat() if data["starts_at"] else None
    figures = {"remaining": remaining, "allocated": data["allocated"], "state": state}
    return _json({**figures, "price_cents": data["price_cents"], "starts_at": starts_at})


@csrf_exempt  # a JSON API: no cookies are used, the Idempotency-Key is required instead
@require_POST
def order_create(request, category: str, product: str):
    started = time.perf_counter()
    response = _order_create(request, category, product)
    # Accepted, sold out or throttled, per second, for the merchant's live dashboard.
    answer_record(product=product, status=response.status_code, seconds=time.perf_counter() - started)
    return response


def _order_create(request, category: str, product: str):
    # A bad key and a bad body are named in one answer, as the monolith's buy-now does.
    key_error = None
    try:
        key = idempotency_key_parse(request_header(request, "Idempotency-Key", None))
    except InvalidInput as exc:
        key, key_error = None, exc
    try:
        json_body_check(request)
    except InvalidInput as exc:
        return _invalid(key_error or exc)
    data = selectors.hot_product_get(category=category, product=product)
    if data is None:
        return _invalid(key_error) if key_error else _refused(services.NotHot("This product is not on the hot path."))
    try:
        order_input = order_input_parse(request.body, per_order_limit=data["per_order_limit"])
    except InvalidInput as exc:
        if key_error:
            return _invalid(InvalidInput({**key_error.fields, **exc.fields}))
        return _over_limit_but_placed(request, key=key, product=data) or _invalid(exc)
    if key_error:
        return _invalid(key_error)
    if acceptance.sold_out_known(product=data, idempotency_key=key):
        return _sold_out_known_answer()
    try:
        accepted = acceptance.order_accept(
            product=data, idempotency_key=key, data=order_input, client_ip=client_ip(request)
        )
    except services.PlacedByMonolith as exc:
        return _monolith_answer(idempotency_key=key, data=order_input, product_slug=data["slug"]) or _refused(exc)
    except services.OrderRefused as exc:
        return _refused(exc)
    return _accepted_answer(accepted.order, category=category, product=product, replayed=accepted.replayed)


def _sold_out_known_answer() -> HttpResponse:
    # Most of a sold-out stampede: no address to parse, no throttle, an answer made once. Its
    # length is given here: the common middleware that would add it is not run on the short way.
    response = _json_encoded(_SOLD_OUT_KNOWN_BODY, status=services.SoldOut.status, detail_given=True)
    response["Content-Length"] = _SOLD_OUT_KNOWN_LENGTH
    return response


def sold_out_answer(request, category: str, product: str) -> HttpResponse | None:
    """`order_create`'s answer to a new buyer of a sale this process knows is sold out
    (`acceptance.sold_out_known`), for a request it would answer so: a valid key and body. It
    calls no cache, database or other server. None for any other request, which the view then
    answers in full. Run by `orders.middleware.SoldOutAnswerMiddleware`, before the
    middlewares that such an answer does not need."""
    started = time.perf_counter()
    try:
        key = idempotency_key_parse(request_header(request, "Idempotency-Key", None))
        # Only from the process's own copy: a cache that does not answer (a silent Redis) is
        # waited for once, by the view, not twice.
        data = selectors.hot_product_here(category=category, product=product)
        if data is None or not acceptance.sold_out_known(product=data, idempotency_key=key):
            return None
        json_body_check(request)
        order_input_parse(request.body, per_order_limit=data["per_order_limit"])
    except InvalidInput:  # the view names what is wrong, with the key's order if it had one
        return None
    response = _sold_out_known_answer()
    answer_record(product=product, status=response.status_code, seconds=time.perf_counter() - started)
    return response


# Read-only JSON: another method gets its 405, not the CSRF check's 403.
@csrf_exempt
@require_safe
def order_status(request, category: str, product: str, number: str, token: str):
    data = selectors.hot_product_get(category=category, product=product)
    # An order's status URL answers for its lifetime, after its sale was closed and deleted too.
    product_id = (
        data["product_id"] if data is not None else selectors.product_id_get(category=category, product=product)
    )
    if product_id is None:
        return _json({"error": "not_found"}, status=404)
    status = selectors.order_status_get(number=number, token=token, product_id=product_id)
    if status is None:
        return _json({"error": "not_found"}, status=404)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status["status"] == "processing" else {}
    return _json(status, headers=headers)
