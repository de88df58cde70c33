"""The sweep of checkouts in doubt (shop.models.PendingCheckout), run by beat: each one that no
answer settled, once its look is due, is asked of the legacy API. An order it placed is recorded
as its buyer's receipt and confirmed by email, once; one that placed nothing is settled (the
lookup voided what it authorised); one it cannot tell about yet is asked again later, less and
less often."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import legacy_client
from legacy_client import Outcome
from shop.checkout_events import checkout_refused_append
from shop.checkout_pending import pending_checkout_buyer, pending_checkout_try_of
from shop.delivery import Delivery
from shop.models import Basket, PendingCheckout
from shop.receipts import checkout_found_record, checkout_placed_answer
from shop.services import basket_take_placed

logger = logging.getLogger(__name__)

# A checkout the lookup cannot tell about is asked again after the sweep's delay, doubled for
# each look that could not tell, up to this.
LOOK_AGAIN_MAX_SECONDS = 3600


@dataclass
class SweepResult:
    placed: int = 0  # orders found and recorded (receipt, PLACED event, email)
    not_placed: int = 0  # settled: no order under the reference
    in_doubt: int = 0  # the legacy API could not tell yet: looked at again later

    def as_dict(self) -> dict[str, int]:
        return {"placed": self.placed, "not_placed": self.not_placed, "in_doubt": self.in_doubt}


def checkout_sweep(*, limit: int = 100) -> SweepResult:
    """Looks up the checkouts in doubt whose look is due, oldest first."""
    result = SweepResult()
    due = PendingCheckout.objects.filter(look_after__lte=timezone.now())
    for pending in due.order_by("look_after")[:limit]:
        try:
            outcome = _look(pending)
        except Exception:  # one checkout that fails keeps none of the others from being looked at
            logger.exception("checkout %s: its lookup failed", pending.reference)
            _look_again(pending)
            outcome = "in_doubt"
        setattr(result, outcome, getattr(result, outcome) + 1)
    if result.placed or result.not_placed:
        logger.info("checkouts in doubt: %s", result.as_dict())
    return result


def _look(pending: PendingCheckout) -> str:
    answer = legacy_client.order_find(reference=pending.reference, caller="storefront")
    attempt = pending_checkout_try_of(pending, answer.data) if checkout_placed_answer(answer) else None
    if attempt is not None:
        buyer = pending_checkout_buyer(attempt)
        order, lines = checkout_found_record(
            reference=pending.reference,
            answer=answer,
            customer=buyer,
            delivery=Delivery.of(attempt),
            fingerprint=attempt["fingerprint"],
        )
        if not attempt["fingerprint"]:  # a checkout's (a buy-now orders from no basket)
            _basket_take(attempt, buyer=buyer, order=order, lines=lines)
        return "placed"
    # Only while no try has moved its look on since this one was read: a try still on its way to
    # the legacy API may place it yet.
    current = PendingCheckout.objects.filter(pk=pending.pk, look_after=pending.look_after)
    if answer.outcome == Outcome.NOT_FOUND:
        with transaction.atomic():
            if current.delete()[0]:
                # Nothing placed so far; the buyer's session may still hold the reference, and a
                # try under it may still place the order.
                checkout_refused_append(
                    reference=pending.reference,
                    lines=pending.tries[-1]["lines"] if pending.tries else [],
                    outcome=str(answer.outcome),
                    retryable=True,
                )
        return "not_placed"
    wait = _look_again(pending)
    why = "an order no try of its own matches" if checkout_placed_answer(answer) else str(answer.outcome)
    logger.warning("checkout %s: still in doubt (%s); asked again in %d s", pending.reference, why, wait)
    return "in_doubt"


def _basket_take(attempt: dict, *, buyer, order, lines: list[dict]) -> None:
    """A found order's lines out of the basket it was ordered from, while that is still its
    buyer's, or its account's (where that basket joined it, or for a try kept before tries named
    their basket): so its buyer, on this browser or another, does not order them a second time.
    Once, whoever takes them first."""
    # Only while it is still the try's buyer's: a guest's basket that became an account's when
    # someone signed in on the browser is that account's now, perhaps another person's.
    basket = None
    if attempt.get("basket"):
        baskets = Basket.objects.filter(pk=attempt["basket"])
        basket = (baskets.filter(owner=buyer) if buyer is not None else baskets.filter(owner__isnull=True)).first()
    if basket is None and buyer is not None:
        basket = Basket.objects.filter(owner=buyer).first()
    if basket is not None:
        # Nor where a guest's basket went on sign-in: found this late, it may be another's.
        basket_take_placed(basket=basket, order=order, lines=lines, follow_merge=False)


def _look_again(pending: PendingCheckout) -> float:
    """Puts the next look off, twice as long for each look that could not tell; unless a try
    moved it on meanwhile. The wait, in seconds."""
    wait = min(LOOK_AGAIN_MAX_SECONDS, settings.SHOP_CHECKOUT_SWEEP_AFTER_SECONDS * 2 ** (pending.looks + 1))
    PendingCheckout.objects.filter(pk=pending.pk, look_after=pending.look_after).update(
        looks=pending.looks + 1, look_after=timezone.now() + timedelta(seconds=wait)
    )
    return wait
