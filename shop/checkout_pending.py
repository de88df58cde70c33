"""A checkout in doubt: noted before its order goes to the legacy API and dropped once an
answer settles it, so that an answer lost (a timeout, the process killed mid-call, the buyer
gone) still leaves something to look up (shop.checkout_sweep).

Every try's body is kept (a try may place nothing and a later one, with another card or basket,
place the order), and the order found is matched to the try whose body it is. A try counts as
open while its call lasts, and after it while its answer left it in doubt: a definite no for
one try (a declined card) settles the checkout only when no other try (another tab's) is open,
which may still place it."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from legacy_client import Outcome
from shop.delivery import Delivery
from shop.models import Basket, BasketLine, PendingCheckout

# A buyer trying one body after another: the oldest are forgotten past this many.
TRIES_KEPT = 20


class BasketOrderedElsewhere(Exception):
    """Another checkout of this basket, under another reference (another browser signed in to the
    account), is out or in doubt: the legacy API could not make the two one order."""


class BasketChangedMeanwhile(Exception):
    """The basket no longer holds the lines this try read from it: another browser's order took
    them (or another tab changed them) since."""


class NotedTry(NamedTuple):
    attempt: dict  # the try, as kept
    new: bool  # no earlier try of the checkout was kept with this very body, buyer and delivery


def pending_checkout_note(
    *,
    reference: str,
    customer: AbstractBaseUser | None,
    delivery: Delivery,
    lines: list[dict],
    card_last4: str,
    fingerprint: str = "",
    basket_id: int | None = None,
) -> NotedTry:
    """Before each try's call: its body is added to the checkout's tries, the try counts as open,
    and the lookup is put off past the call's end. The try, as kept (for pending_checkout_try_ended).
    Raises BasketOrderedElsewhere, noting nothing, while another reference's try of `basket_id`
    is open, and BasketChangedMeanwhile when the basket no longer holds `lines`."""
    attempt = {
        "customer": customer.pk if customer is not None and customer.is_authenticated else None,
        **asdict(delivery),
        "lines": lines,
        "card_last4": card_last4,
        "fingerprint": fingerprint,
    }
    if basket_id is not None:  # a checkout's: the sweep takes a found order's lines out of it
        attempt["basket"] = basket_id
    look_after = timezone.now() + timedelta(seconds=settings.SHOP_CHECKOUT_SWEEP_AFTER_SECONDS)
    with transaction.atomic():
        pending, created = PendingCheckout.objects.select_for_update().get_or_create(
            reference=reference, defaults={"look_after": look_after, "tries": [attempt], "tries_open": 1}
        )
        new = created or attempt not in pending.tries
        if not created:
            tries = [t for t in pending.tries if t != attempt] + [attempt]
            PendingCheckout.objects.filter(pk=pending.pk).update(
                tries=tries[-TRIES_KEPT:], tries_open=F("tries_open") + 1, look_after=look_after
            )
        if basket_id is not None and _basket_ordered_elsewhere(basket_id=basket_id, reference=reference):
            raise BasketOrderedElsewhere
        if basket_id is not None and not _basket_holds(basket_id=basket_id, lines=lines):
            raise BasketChangedMeanwhile
    return NotedTry(attempt, new)


def _basket_holds(*, basket_id: int, lines: list[dict]) -> bool:
    """Whether the basket, under its row's lock, holds `lines` as read before it: another
    browser's order, placed and taken out of it since, settled its checkout with it, so no open
    try shows it (shop.checkouts takes the lines in the receipt's transaction)."""
    held = dict(BasketLine.objects.filter(basket_id=basket_id).values_list("product__slug", "quantity"))
    return held == {line["product"]: line["quantity"] for line in lines}


def _basket_ordered_elsewhere(*, basket_id: int, reference: str) -> bool:
    """Whether a try of the basket under another reference is open. An account's basket is every
    browser's signed in to it, and each browser checks out under a reference of its own. Asked
    under the basket's row, after this try is noted (its checkout's row first, as a receipt and
    the sweep take them): of two checkouts of one basket at once, the second sees the first."""
    Basket.objects.select_for_update().filter(pk=basket_id).first()
    others = PendingCheckout.objects.filter(tries_open__gt=0).exclude(reference=reference)
    return any(
        attempt.get("basket") == basket_id and not attempt.get("refused")
        for tries in others.values_list("tries", flat=True)
        for attempt in tries
    )


def pending_checkout_try_ended(*, reference: str, attempt: dict, outcome: Outcome, new: bool = False) -> bool:
    """After a try's call, its answer not an order. A try answered with a definite no for its
    body (declined, no stock, invalid, the reference another body's) is closed; one whose answer
    left it in doubt stays open. A declined card or no stock is a no for the reference too (the
    legacy API answers so only to the body it holds) and settles the checkout when no other try
    is open (another tab's, out or in doubt, may still place it); a body refused as invalid was
    never taken, and settles it only when no other body was tried. A closed try is marked refused:
    the legacy API did not place that body, so no order found later is its. Whether the checkout
    is settled. A try answered "in progress" is closed, settling nothing."""
    if outcome == Outcome.IN_PROGRESS:
        # Another try with this very body (the legacy API binds a reference to one body) is being
        # placed right now: this one placed nothing and never will, and that try's outcome is
        # the checkout's. Its entry is marked refused when this try added it (`new`: another
        # delivery or buyer than the try being placed), so no order found later is taken for it;
        # an entry an earlier try kept is that try's too, and stays.
        with transaction.atomic():
            current = PendingCheckout.objects.select_for_update().filter(reference=reference).first()
            if current is None:
                return False
            tries = list(current.tries)
            if new and attempt in tries:
                tries[tries.index(attempt)] = {**attempt, "refused": True}
            PendingCheckout.objects.filter(pk=current.pk).update(
                tries=tries, tries_open=F("tries_open") - 1 if current.tries_open else 0
            )
        return False
    closes = outcome in (Outcome.DECLINED, Outcome.OUT_OF_STOCK, Outcome.INVALID, Outcome.REFERENCE_REUSED)
    if not closes:
        return False
    with transaction.atomic():
        current = PendingCheckout.objects.select_for_update().filter(reference=reference).first()
        if current is None:
            return True
        alone = current.tries_open <= 1
        if (outcome in (Outcome.DECLINED, Outcome.OUT_OF_STOCK) and alone) or (
            outcome == Outcome.INVALID and alone and len(current.tries) == 1
        ):
            current.delete()
            return True
        tries = list(current.tries)
        if attempt in tries:
            at = len(tries) - 1 - tries[::-1].index(attempt)
            tries[at] = {**attempt, "refused": True}
        PendingCheckout.objects.filter(pk=current.pk).update(
            tries=tries, tries_open=F("tries_open") - 1 if current.tries_open else 0
        )
        return False


def pending_checkout_settle(*, reference: str, unless_out: bool = False) -> bool:
    """Once the reference's order is recorded (in the receipt's transaction), or a lookup found
    none under it (`unless_out`: not while a try is open, out or in doubt, which may place it yet).
    Whether the checkout is settled."""
    settled = PendingCheckout.objects.filter(reference=reference)
    if unless_out:
        settled.filter(tries_open=0).delete()
        return not settled.exists()
    settled.delete()
    return True


def pending_checkout_try_of(pending: PendingCheckout, order: dict) -> dict | None:
    """The try whose body the legacy API's order is (its buyer's name and email, its lines and
    the card's last four digits, compared as the legacy API compares bodies; never one it
    refused), the latest if more than one; None when none is, or when tries of different buyers
    are: the order is not given to anyone on a guess."""

    def body(name, email, lines, last4) -> tuple:
        pairs = sorted((str(line.get("product")), int(line.get("quantity") or 0)) for line in lines or [])
        return (str(name or "").strip(), str(email or "").strip().lower(), pairs, str(last4 or ""))

    ordered_by = order.get("customer") or {}
    placed = body(ordered_by.get("name"), ordered_by.get("email"), order.get("lines"), order.get("card_last4"))
    matches = [
        attempt
        for attempt in pending.tries
        if not attempt.get("refused")
        and body(attempt["name"], attempt["email"], attempt["lines"], attempt["card_last4"]) == placed
    ]
    if not matches or len({attempt["customer"] for attempt in matches}) > 1:
        return None
    return matches[-1]


def pending_checkout_buyer(attempt: dict) -> AbstractBaseUser | None:
    """The account a try was made by; None for a guest's, or an account deleted since."""
    if attempt.get("customer") is None:
        return None
    return get_user_model().objects.filter(pk=attempt["customer"]).first()
