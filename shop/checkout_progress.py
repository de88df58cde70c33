"""Where a checkout sent more than once stands, for the page that waits on it (the second of two
submits sent at once is answered with that page: shop.checkout_errors.CheckoutInProgress): its order
once placed, its lines taken out of the basket once (shop.services.basket_take_placed), or the
refusal its first try got, told to the browser that sent it only."""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass

from django.core.cache import cache
from django.http import HttpRequest

import legacy_client
from shop.checkout_reference import (
    SESSION_CHECKOUT_REFERENCE,
    checkout_reference_forget,
    checkout_reference_is_buyers,
)
from shop.models import PendingCheckout, PlacedOrder
from shop.order_links import order_grant_access
from shop.receipts import checkout_placed_answer, placed_lines
from shop.selectors import basket_get_for_request, placed_order_just_now
from shop.services import basket_take_placed
from shop.window_counts import digest

logger = logging.getLogger(__name__)


def checkout_placed_earlier(request: HttpRequest) -> PlacedOrder | None:
    """The order this browser's unsettled checkout placed after all, if its buyer started it:
    the second of two submits sent at once kept the reference (its answer was "still being
    placed") after the first placed the order and emptied the basket."""
    reference = request.session.get(SESSION_CHECKOUT_REFERENCE)
    if not reference or not checkout_reference_is_buyers(request):
        return None
    placed = PlacedOrder.objects.filter(reference=reference).first()
    if placed is not None:
        # Its lines are no longer in the basket: that is empty.
        basket_take_placed(basket=basket_get_for_request(request), order=placed, lines=[])
    return placed


@dataclass(frozen=True)
class CheckoutProgress:
    """Where a checkout sent more than once stands (CheckoutInProgress), for the page that waits."""

    order: PlacedOrder | None  # placed under the reference
    placing: bool  # not placed yet, and a try of it may still place it
    browsers: bool  # this browser sent it (its session holds the reference)
    buyers: bool  # and whoever checks out on it now started it (not so once a guest signed in)


def checkout_emptied_by(request: HttpRequest) -> PlacedOrder | None:
    """The order this browser placed a moment ago that emptied its basket: told of where the
    basket shows empty (a submit from another tab's page, or the buyer back after the answer was
    lost on a dropped network), so that "empty" is not read as nothing ordered. None once a
    checkout page was opened since for another basket: its submit is not that order's."""
    just_placed = placed_order_just_now(request)
    if just_placed is None or request.session.get(SESSION_CHECKOUT_REFERENCE) not in (None, just_placed.reference):
        return None
    return just_placed


def checkout_progress(request: HttpRequest, *, reference: str) -> CheckoutProgress:
    """Where the checkout under `reference` stands, as this browser may be told: an order this
    browser's buyer started is granted to the session here. Whether the session may see an
    order is the caller's to check, as the order page does."""
    browsers = bool(reference) and request.session.get(SESSION_CHECKOUT_REFERENCE) == reference
    buyers = browsers and checkout_reference_is_buyers(request)
    placed = PlacedOrder.objects.filter(reference=reference).first() if reference else None
    if placed is not None:
        if buyers:
            order_grant_access(request, placed)
            if not _basket_take_found(request, placed):
                # Its lines could not be read from the legacy API: the reference stays with the
                # session, so its next checkout is answered with this order, never a second one.
                return CheckoutProgress(placed, placing=False, browsers=browsers, buyers=buyers)
        if browsers:
            # Another's (a guest's, before someone signed in here) leaves this basket alone: the
            # one who checks out now may be someone else, whose basket it is.
            checkout_reference_forget(request)
        return CheckoutProgress(placed, placing=False, browsers=browsers, buyers=buyers)
    placing = browsers and PendingCheckout.objects.filter(reference=reference, tries_open__gt=0).exists()
    return CheckoutProgress(None, placing=placing, browsers=browsers, buyers=buyers)


def checkout_still_placing(request: HttpRequest, *, reference: str) -> bool:
    """Whether the waiting page should wait on: this browser's checkout under `reference` has no
    order yet and a try of it may still place one. It only reads: the page is reloaded for what
    checkout_progress grants, takes and tells."""
    if not reference or request.session.get(SESSION_CHECKOUT_REFERENCE) != reference:
        return False
    if PlacedOrder.objects.filter(reference=reference).exists():
        return False
    return PendingCheckout.objects.filter(reference=reference, tries_open__gt=0).exists()


REFUSAL_KEPT_SECONDS = 600


def _refusal_key(reference: str) -> str:
    return f"shop:checkout:refused:{hashlib.sha256(reference.encode()).hexdigest()[:32]}"


def checkout_refusal_keep(request: HttpRequest, *, reference: str, message: str) -> None:
    """A definite no for a try of this checkout (a declined card, no stock), kept a while for the
    page that waits on it: the browser that sent it twice was shown the other submit's page.
    A cache that is away loses it, and the refusal is told all the same."""
    if not request.session.session_key:
        return
    try:
        # The session by a keyed hash: a session's key in the cache would sign anyone in as it.
        cache.set(_refusal_key(reference), (digest(request.session.session_key), message), REFUSAL_KEPT_SECONDS)
    except Exception:
        logger.warning("could not keep checkout %s's refusal for its waiting page", reference, exc_info=True)


def checkout_refusal_told(request: HttpRequest, *, reference: str) -> str | None:
    """What the checkout under `reference` was refused with, for the browser that sent it only."""
    try:
        kept = cache.get(_refusal_key(reference)) if reference else None
    except Exception:  # the page says what it can without it
        logger.warning("could not read checkout %s's refusal", reference, exc_info=True)
        kept = None
    session_key = request.session.session_key
    if not kept or not session_key or not hmac.compare_digest(kept[0], digest(session_key)):
        return None
    return kept[1]


def _basket_take_found(request: HttpRequest, order: PlacedOrder) -> bool:
    """Takes the lines of a placed order out of this browser's basket unless a request answered
    with it took them (the submit that placed it, as a rule), as the lines the legacy API placed;
    False when it cannot read them now. They are read before the claim, so a process that dies
    reading them leaves them for the next request."""
    if order.lines_taken:
        return True
    answer = legacy_client.order_find(reference=order.reference, caller="storefront")
    if not checkout_placed_answer(answer):
        return False
    basket_take_placed(basket=basket_get_for_request(request), order=order, lines=placed_lines(answer.data))
    return True
