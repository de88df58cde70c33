"""Placing accepted orders with the legacy API, at most ORDERS_LEGACY_CONCURRENCY (below
LEGACY_CAPACITY) at once across every worker process, and recording the outcome: complete,
failed or dead-lettered. What a merchant then does with a dead letter is orders.dead_letters."""

from __future__ import annotations

import logging
import os
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import DatabaseError, transaction
from django.db.models.functions import Now
from django.utils import timezone

import legacy_client
from legacy_client import LegacyUnavailable, OrderAnswer, Outcome
from orders.cards import CardKeyNotHeld, CardWiped, card_open
from orders.lifecycle import order_transition
from orders.models import DeadLetter, HotOrder, LegacySlot, OrderStage, OrderStatus, OutboxMessage
from orders.permits import legacy_slot_acquire, legacy_slot_lease_seconds, legacy_slot_release
from orders.selectors import sale_hold_subquery
from shop.decline_throttle import decline_count

logger = logging.getLogger(__name__)


class TryLater(Exception):
    """Not a failed attempt: the order queues again, after `retry_in` seconds (None: the
    retry backoff), with the retries it had."""

    def __init__(self, message: str, *, retry_in: float | None = None):
        super().__init__(message)
        self.retry_in = retry_in


class LegacyBusy(TryLater):
    """Every legacy-capacity permit is taken."""


class LegacyStillPlacing(TryLater):
    """The legacy API is still placing an earlier request with this order's reference (one
    whose worker, or whose legacy server, died mid-call): not a failed attempt. The legacy API
    ends such a request's claim when its lease there ends, and answers the reference then."""


class CardKeyMissing(Exception):
    """This worker holds no key that opens the order's card (a rolling deploy has given the web
    processes a new key first): a failed attempt, retried with the task's backoff by whichever
    worker takes the order next, one holding the key. Never a declined card: when the retries
    run out the order is dead-lettered, its card and units kept, for a merchant to redrive."""


class OrderClaimed(TryLater):
    """Another delivery of the order's message holds its claim: it may be talking to the
    legacy API right now, so this one must not send the order again."""


def order_claim_lease_seconds() -> float:
    """A claim covers the wait for a permit and the legacy call the permit allows."""
    return settings.ORDERS_SLOT_WAIT_SECONDS + legacy_slot_lease_seconds()


def order_claim(*, order_id: int, holder: str = "worker") -> HotOrder | None:
    """Claims an order for `holder` to place it, for order_claim_lease_seconds() on the
    database's clock; None when there is nothing to do (final, unknown, dead-lettered). The
    order carries `sale_hold`: the hold its units are drawn on at the legacy API, if any.
    Raises OrderClaimed while another holder's claim lasts, so that two deliveries of one
    message (a duplicate, a retry after a read timeout, a redelivery after a worker died
    mid-call) never have the order at the legacy API at the same time."""
    with transaction.atomic():
        order = (
            HotOrder.objects.select_for_update(of=("self",))
            .select_related("product")
            .annotate(db_now=Now(), sale_hold=sale_hold_subquery())
            .filter(pk=order_id)
            .first()
        )
        if order is None or order.is_final or order.stage == OrderStage.DEAD_LETTERED:
            return None
        now = order.db_now
        if order.claimed_until is not None and order.claimed_until > now:
            raise OrderClaimed(
                f"order {order.number} is being placed by {order.claimed_by}",
                retry_in=(order.claimed_until - now).total_seconds(),
            )
        OutboxMessage.objects.filter(order=order).delete()
        order.attempts += 1
        order.claimed_by = holder[:100]
        order.claimed_until = now + timedelta(seconds=order_claim_lease_seconds())
        # A reservation being worked on must not expire under the worker.
        order.reserved_until = max(order.reserved_until, now + timedelta(seconds=settings.ORDERS_RESERVATION_SECONDS))
        claim_fields = ["attempts", "claimed_by", "claimed_until", "reserved_until", "updated_at"]
        if order.stage == OrderStage.QUEUED:
            order_transition(
                order, to=OrderStage.VALIDATING, detail=f"attempt {order.attempts}", save_also=claim_fields
            )
        else:
            order.save(update_fields=claim_fields)
    return order


def order_claim_release(*, order_id: int, holder: str) -> None:
    """Ends `holder`'s claim: the order's next delivery may send it at once."""
    HotOrder.objects.filter(pk=order_id, claimed_by=holder[:100]).update(claimed_by="", claimed_until=None)


def order_claim_extend(*, order_id: int, holder: str, seconds: float) -> None:
    """Keeps `holder`'s claim for `seconds` more, on the database's clock."""
    HotOrder.objects.filter(pk=order_id, claimed_by=holder[:100]).update(
        claimed_until=Now() + timedelta(seconds=seconds)
    )


def _claim_release_quietly(*, order_id: int, holder: str) -> None:
    """A claim that cannot be released now (database restarting) ends with its lease."""
    try:
        order_claim_release(order_id=order_id, holder=holder)
    except DatabaseError:
        logger.warning("claim on order %s not released; its lease will end", order_id, exc_info=True)


def holder_name(worker: str) -> str:
    """Who holds an order's claim and its legacy permit: unique first (the process id, so a
    claim shows which worker process holds it, and a random part), then the worker's node
    name, cut to what a permit's holder column keeps. A node name such as a cloud host's
    (celery@ip-10-0-12-34.eu-west-1.compute.internal) is longer than that column on its own,
    and the permit's write failed on every attempt."""
    return f"{os.getpid()}:{uuid.uuid4().hex[:12]}:{worker}"[: LegacySlot._meta.get_field("holder").max_length]


def order_send_to_legacy(*, order_id: int, worker: str = "worker") -> str:
    """Places a claimed order with the legacy API (the order's reference is its idempotency
    key there) and records the outcome. Raises LegacyUnavailable when the attempt should be
    retried later, CardKeyMissing when a worker holding the card's key should retry it,
    TryLater (LegacyBusy, OrderClaimed, LegacyStillPlacing) when it should be tried again later
    without counting as an attempt."""
    holder = holder_name(worker)
    order = order_claim(order_id=order_id, holder=holder)
    if order is None:
        return "skipped"
    try:
        card_number = card_open(order.card_sealed)
    except CardKeyNotHeld as exc:
        raise _card_key_missing(order=order, holder=holder) from exc
    except CardWiped as exc:
        if order.attempts > 1:
            # An earlier attempt may have reached the legacy API and placed it: failing it here
            # would give its units back while the legacy order holds them. The merchant looks.
            order_dead_letter(
                order_id=order_id,
                error=f"card details no longer held ({exc}), and an earlier attempt may have placed it: "
                f"look for reference {order.reference} at the order backend",
            )
            _claim_release_quietly(order_id=order_id, holder=holder)
            return "dead_lettered"
        order_fail(order_id=order_id, stage=OrderStage.CARD_DECLINED, detail=f"card details no longer held: {exc}")
        return "card_missing"
    slot = legacy_slot_acquire(holder=holder, wait_seconds=settings.ORDERS_SLOT_WAIT_SECONDS)
    if slot is None:
        order_attempt_failed(order_id=order_id, error="all legacy capacity in use")
        _claim_release_quietly(order_id=order_id, holder=holder)
        raise LegacyBusy("all legacy capacity in use")
    hold = order.sale_hold
    try:
        answer = legacy_client.order_place(
            reference=order.reference,
            name=order.customer_name,
            email=order.customer_email,
            # At the price the buyer's 202 gave: a merchant's change since is not theirs to pay.
            lines=[
                {"product": order.product.slug, "quantity": order.quantity, "unit_price_cents": order.unit_price_cents}
            ],
            card_number=card_number,
            caller="hotpath",
            hold=hold,
        )
    except BaseException:
        _slot_release_quietly(number=slot, holder=holder)
        _claim_release_quietly(order_id=order_id, holder=holder)
        raise
    if answer.outcome == Outcome.UNKNOWN:
        # Sent, and the legacy API may still be working on it: the permit is kept until its
        # lease ends, and the claim as long, so that no retry sends the order while this
        # request may still be authorising the card.
        order_claim_extend(order_id=order_id, holder=holder, seconds=legacy_slot_lease_seconds())
        order_attempt_failed(order_id=order_id, error=str(answer))
        raise LegacyUnavailable(str(answer), retry_after=answer.retry_after, sent=True)
    # The legacy API has answered (or was never reached): its capacity is free for the next
    # order while this answer is recorded. If recording fails (our database is restarting),
    # the task is retried and the legacy API answers the same reference with the same order.
    _slot_release_quietly(number=slot, holder=holder)
    outcome = ""
    try:
        outcome = _answer_record(order_id=order_id, answer=answer, hold=hold, holder=holder)
        return outcome
    finally:
        if outcome != "complete":  # completing the order ended the claim with it
            _claim_release_quietly(order_id=order_id, holder=holder)


def _card_key_missing(*, order: HotOrder, holder: str) -> CardKeyMissing:
    """Records why the attempt stopped and lets go of the order, so that a worker holding the
    key can take it at once; the order stays as it is, its card sealed and its units held."""
    error = (
        f"order {order.number}: its card is sealed under a key this worker does not hold; retrying for a "
        "worker that holds it (if it is dead-lettered: give every worker the key, CARD_ENCRYPTION_KEY, then redrive it)"
    )
    logger.warning(
        "order %s: this process lacks the card encryption key its card was sealed with "
        "(CARD_ENCRYPTION_KEY); left for a worker that holds it",
        order.number,
    )
    order_attempt_failed(order_id=order.pk, error=error)
    _claim_release_quietly(order_id=order.pk, holder=holder)
    return CardKeyMissing(error)


def _slot_release_quietly(*, number: int, holder: str) -> None:
    """A permit that cannot be released now (database restarting) frees itself when its lease
    ends; that must not hide the order's outcome."""
    try:
        legacy_slot_release(number=number, holder=holder)
    except DatabaseError:
        logger.warning("legacy permit %s not released; its lease will end", number, exc_info=True)


def _answer_record(*, order_id: int, answer: OrderAnswer, hold: str | None = None, holder: str = "") -> str:
    """Records one outcome of the legacy API; raises LegacyUnavailable for one worth retrying,
    LegacyStillPlacing while the legacy API works on the reference for an earlier request.
    A completed order's claim by `holder` ends with the completion."""
    match answer.outcome:
        case Outcome.PLACED:
            order_complete(
                order_id=order_id,
                holder=holder,
                legacy_order_id=answer.data.get("id"),
                legacy_number=str(answer.data.get("number") or ""),
                # A reference placed earlier from open stock (the monolith took the order first)
                # answers with that order: the sale's units were not drawn, so they stay on sale.
                from_hold=answer.data.get("hold") == hold,
            )
            return "complete"
        case Outcome.DECLINED:
            order_fail(order_id=order_id, stage=OrderStage.CARD_DECLINED, detail=str(answer), card_tried=True)
            return "card_declined"
        case Outcome.OUT_OF_STOCK:
            order_fail(order_id=order_id, stage=OrderStage.SOLD_OUT, detail=str(answer))
            return "sold_out"
        case Outcome.INVALID | Outcome.REFERENCE_REUSED | Outcome.REFUSED:
            # Retrying cannot help: a merchant must look at it.
            order_dead_letter(order_id=order_id, error=str(answer))
            return "dead_lettered"
        case Outcome.IN_PROGRESS:
            order_attempt_failed(order_id=order_id, error=str(answer))
            raise LegacyStillPlacing(str(answer), retry_in=answer.retry_after)
    # Busy (an earlier request for this reference may still be at work there: never "sold
    # out"), or not sent at all: try again later.
    order_attempt_failed(order_id=order_id, error=str(answer))
    raise LegacyUnavailable(str(answer), retry_after=answer.retry_after)


def order_attempt_failed(*, order_id: int, error: str) -> None:
    HotOrder.objects.filter(pk=order_id).update(last_error=error[:2000], updated_at=timezone.now())


def order_complete(
    *, order_id: int, legacy_order_id: int | None, legacy_number: str, from_hold: bool = True, holder: str = ""
) -> HotOrder:
    """The legacy API has the order: record it, turn the reservation into a sale. The claim of
    `holder` (the worker that placed it) ends in the same write."""
    with transaction.atomic():
        order = HotOrder.objects.select_for_update(of=("self",)).select_related("product").get(pk=order_id)
        if order.status == OrderStatus.COMPLETE:
            return order
        if order.status == OrderStatus.FAILED:
            # Two deliveries of one order raced and the legacy API placed it after all: the
            # record follows the legacy API, and a merchant must tell the buyer.
            logger.error("order %s was failed (%s) but the legacy API placed it", order.number, order.stage)
        order.legacy_order_id = legacy_order_id
        order.legacy_number = legacy_number
        order.last_error = ""
        placed_fields = ["legacy_order_id", "legacy_number", "last_error"]
        if holder and order.claimed_by == holder[:100]:
            order.claimed_by, order.claimed_until = "", None
            placed_fields += ["claimed_by", "claimed_until"]
        order_transition(
            order,
            via=[(OrderStage.PAYMENT_AUTHORISED, "card approved by the legacy API")],
            to=OrderStage.SENT_TO_FULFILMENT,
            detail=f"legacy order {legacy_number or legacy_order_id}",
            sold_from_hold=from_hold,
            save_also=placed_fields,
        )
    return order


def order_fail(*, order_id: int, stage: str, detail: str = "", card_tried: bool = False) -> HotOrder:
    """The order cannot be placed (card declined, sold out, expired): release its items.
    `card_tried`: the order backend declined its card, which counts against its buyer's address
    and mailbox (shop.decline_throttle: card testing), once the failure is committed."""
    with transaction.atomic():
        order = HotOrder.objects.select_for_update(of=("self",)).select_related("product").get(pk=order_id)
        if order.is_final:
            return order
        order_transition(order, to=stage, detail=detail)
        if card_tried:
            address, email = order.client_ip, order.customer_email
            transaction.on_commit(lambda: decline_count(address=address, email=email))
    return order


def order_dead_letter(*, order_id: int, error: str) -> HotOrder:
    """Retries ran out: park the order (its items stay reserved) and tell the merchants."""
    with transaction.atomic():
        order = HotOrder.objects.select_for_update(of=("self",)).select_related("product").get(pk=order_id)
        if order.is_final or order.stage == OrderStage.DEAD_LETTERED:
            return order
        order.last_error = error[:2000]
        order_transition(order, to=OrderStage.DEAD_LETTERED, detail=error, save_also=["last_error"])
        DeadLetter.objects.create(order=order, error=error, attempts=order.attempts)
        number, product = order.number, order.product.title
        transaction.on_commit(lambda: _merchants_tell(number=number, product=product, error=error))
    return order


def _merchants_tell(*, number: str, product: str, error: str) -> None:
    try:
        send_mail(
            subject=f"Hot order {number} is dead-lettered",
            message=(
                f"Order {number} ({product}) could not be placed with the order backend.\n"
                f"Last error: {error}\n\n"
                "Its items stay reserved. Redrive it from the admin (Hot path → Dead letters) "
                "once the order backend is healthy, or, if the order backend will never take it, "
                "cancel it there (Cancel and release the units)."
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=settings.MERCHANT_EMAILS,
        )
    except Exception:  # the dead letter is recorded; a mail outage must not undo that
        logger.exception("could not email the merchants about order %s", number)
