"""Placing accepted orders with the legacy API, at most ORDERS_LEGACY_CONCURRENCY (below
LEGACY_CAPACITY) at once across every
worker process, and recording the outcome: complete, failed, dead-lettered, redriven."""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from datetime import timedelta

import urllib3
from django.conf import settings
from django.core.mail import send_mail
from django.db import DatabaseError, transaction
from django.utils import timezone

from orders.models import DeadLetter, HotOrder, LegacySlot, OrderStage, OrderStatus, OutboxMessage
from orders.services import (
    order_stage_set,
    outbox_publish,
    reservation_confirm,
    reservation_release,
    status_refresh_on_commit,
)
from shop import legacy_client
from shop.legacy_client import LegacyUnavailable

logger = logging.getLogger(__name__)


class LegacyBusy(Exception):
    """Every legacy-capacity permit is taken: try again later (not a failure)."""


def legacy_slot_lease_seconds() -> float:
    # Longer than any legacy call (connect + read timeout), so a permit outlives its call.
    return settings.LEGACY_API_TIMEOUT + 2 + 5


def legacy_slot_acquire(*, holder: str, wait_seconds: float) -> int | None:
    """Takes one of ORDERS_LEGACY_CONCURRENCY permits (at most LEGACY_CAPACITY) shared by every
    worker process; None if none frees up within `wait_seconds`. A permit is leased: one held
    by a dead worker expires."""
    capacity = min(settings.ORDERS_LEGACY_CONCURRENCY, settings.LEGACY_CAPACITY)
    deadline = time.monotonic() + wait_seconds
    created = False
    while True:
        now = timezone.now()
        with transaction.atomic():
            slot = (
                LegacySlot.objects.select_for_update(skip_locked=True)
                .filter(number__lte=capacity)
                .exclude(lease_until__gt=now)
                .order_by("number")
                .first()
            )
            if slot is not None:
                slot.holder = holder
                slot.lease_until = now + timedelta(seconds=legacy_slot_lease_seconds())
                slot.save(update_fields=["holder", "lease_until"])
                return slot.number
        if not created:  # none free: the permits' rows may not all exist yet (a new capacity)
            LegacySlot.objects.bulk_create(
                [LegacySlot(number=n) for n in range(1, capacity + 1)], ignore_conflicts=True
            )
            created = True
            continue
        if time.monotonic() >= deadline:
            return None
        # Soon, so that a permit freed is taken again at once: the legacy API idles meanwhile.
        time.sleep(0.01 + secrets.randbelow(20) / 1000)


def legacy_slot_release(*, number: int, holder: str) -> None:
    LegacySlot.objects.filter(number=number, holder=holder).update(holder="", lease_until=None)


def order_claim(*, order_id: int) -> HotOrder | None:
    """Marks an order as being placed; None when there is nothing to do (final, unknown,
    dead-lettered), which makes a redelivered message harmless."""
    with transaction.atomic():
        order = HotOrder.objects.select_for_update(of=("self",)).select_related("product").filter(pk=order_id).first()
        if order is None or order.is_final or order.stage == OrderStage.DEAD_LETTERED:
            return None
        OutboxMessage.objects.filter(order=order).delete()
        order.attempts += 1
        # A reservation being worked on must not expire under the worker.
        order.reserved_until = max(
            order.reserved_until, timezone.now() + timedelta(seconds=settings.ORDERS_RESERVATION_SECONDS)
        )
        if order.stage == OrderStage.QUEUED:
            order_stage_set(order, OrderStage.VALIDATING, f"attempt {order.attempts}")
            status_refresh_on_commit(order)
        order.save(update_fields=["attempts", "reserved_until", "stage", "updated_at"])
    return order


def order_send_to_legacy(*, order_id: int, worker: str = "worker") -> str:
    """Places a claimed order with the legacy API (the order's reference is its idempotency
    key there) and records the outcome. Raises LegacyUnavailable or LegacyBusy when the
    attempt should be retried later."""
    order = order_claim(order_id=order_id)
    if order is None:
        return "skipped"
    holder = f"{worker}:{uuid.uuid4().hex[:12]}"
    slot = legacy_slot_acquire(holder=holder, wait_seconds=settings.ORDERS_SLOT_WAIT_SECONDS)
    if slot is None:
        order_attempt_failed(order_id=order_id, error="all legacy capacity in use")
        raise LegacyBusy("all legacy capacity in use")
    try:
        response = legacy_client.order_place(
            reference=order.reference,
            name=order.customer_name,
            email=order.customer_email,
            lines=[{"product": order.product.slug, "quantity": order.quantity}],
            card_number=order.card_number,
            caller="hotpath",
        )
    except LegacyUnavailable as exc:
        if not isinstance(exc.__cause__, urllib3.exceptions.ReadTimeoutError):
            _slot_release_quietly(number=slot, holder=holder)
        # Else the request was sent and the legacy API may still be working on it: the
        # permit is kept until its lease ends. (A refused connection is a ConnectTimeoutError.)
        order_attempt_failed(order_id=order_id, error=str(exc))
        raise
    except BaseException:
        _slot_release_quietly(number=slot, holder=holder)
        raise
    # The legacy API has answered: its capacity is free for the next order while this
    # answer is recorded. If recording fails (our database is restarting), the task is
    # retried and the legacy API answers the same reference with the same order.
    _slot_release_quietly(number=slot, holder=holder)
    return _answer_record(order_id=order_id, response=response)


def _slot_release_quietly(*, number: int, holder: str) -> None:
    """A permit that cannot be released now (database restarting) frees itself when its lease
    ends; that must not hide the order's outcome."""
    try:
        legacy_slot_release(number=number, holder=holder)
    except DatabaseError:
        logger.warning("legacy permit %s not released; its lease will end", number, exc_info=True)


def _answer_record(*, order_id: int, response) -> str:
    if response.ok:
        order_complete(
            order_id=order_id,
            legacy_order_id=response.data.get("id"),
            legacy_number=str(response.data.get("number") or ""),
        )
        return "complete"
    if response.status == 402:
        order_fail(order_id=order_id, stage=OrderStage.CARD_DECLINED, detail="the legacy API declined the card")
        return "card_declined"
    if response.status == 409:
        order_fail(order_id=order_id, stage=OrderStage.SOLD_OUT, detail="the legacy API has no stock left")
        return "sold_out"
    if 400 <= response.status < 500 and response.status not in (408, 425, 429):
        # Retrying cannot help: a merchant must look at it.
        order_dead_letter(order_id=order_id, error=f"legacy API refused the order ({response.status}): {response.data}")
        return "dead_lettered"
    error = f"legacy API answered {response.status}"
    order_attempt_failed(order_id=order_id, error=error)
    raise LegacyUnavailable(error)


def order_attempt_failed(*, order_id: int, error: str) -> None:
    HotOrder.objects.filter(pk=order_id).update(last_error=error[:2000], updated_at=timezone.now())


def order_complete(*, order_id: int, legacy_order_id: int | None, legacy_number: str) -> HotOrder:
    """The legacy API has the order: record it, turn the reservation into a sale."""
    with transaction.atomic():
        order = HotOrder.objects.select_for_update().get(pk=order_id)
        if order.status == OrderStatus.COMPLETE:
            return order
        if order.status == OrderStatus.FAILED:
            # Two deliveries of one order raced and the legacy API placed it after all: the
            # record follows the legacy API, and a merchant must tell the buyer.
            logger.error("order %s was failed (%s) but the legacy API placed it", order.number, order.stage)
        order_stage_set(order, OrderStage.PAYMENT_AUTHORISED, "card approved by the legacy API")
        order_stage_set(order, OrderStage.SENT_TO_FULFILMENT, f"legacy order {legacy_number or legacy_order_id}")
        reservation_confirm(order=order)
        order.status = OrderStatus.COMPLETE
        order.legacy_order_id = legacy_order_id
        order.legacy_number = legacy_number
        order.card_number = ""
        order.last_error = ""
        order.completed_at = timezone.now()
        order.save()
        status_refresh_on_commit(order)
    return order


def order_fail(*, order_id: int, stage: str, detail: str = "") -> HotOrder:
    """The order cannot be placed (card declined, sold out, expired): release its items."""
    with transaction.atomic():
        order = HotOrder.objects.select_for_update().get(pk=order_id)
        if order.is_final:
            return order
        order_stage_set(order, stage, detail)
        reservation_release(order=order)
        order.status = OrderStatus.FAILED
        order.card_number = ""
        order.completed_at = timezone.now()
        order.save()
        status_refresh_on_commit(order)
    return order


def order_dead_letter(*, order_id: int, error: str) -> HotOrder:
    """Retries ran out: park the order (its items stay reserved) and tell the merchants."""
    with transaction.atomic():
        order = HotOrder.objects.select_for_update().select_related("product").get(pk=order_id)
        if order.is_final or order.stage == OrderStage.DEAD_LETTERED:
            return order
        order_stage_set(order, OrderStage.DEAD_LETTERED, error)
        order.last_error = error[:2000]
        order.save(update_fields=["stage", "last_error", "updated_at"])
        DeadLetter.objects.create(order=order, error=error, attempts=order.attempts)
        status_refresh_on_commit(order)
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
                "once the order backend is healthy."
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=settings.MERCHANT_EMAILS,
        )
    except Exception:  # the dead letter is recorded; a mail outage must not undo that
        logger.exception("could not email the merchants about order %s", number)


def order_redrive(*, order_id: int, user=None) -> bool:
    """Queues a dead-lettered order again; False when it is not dead-lettered."""
    with transaction.atomic():
        order = HotOrder.objects.select_for_update().get(pk=order_id)
        if order.stage != OrderStage.DEAD_LETTERED or order.is_final:
            return False
        order_stage_set(order, OrderStage.QUEUED, f"redriven by {user or 'a merchant'}")
        order.reserved_until = timezone.now() + timedelta(seconds=settings.ORDERS_RESERVATION_SECONDS)
        order.save(update_fields=["stage", "reserved_until", "updated_at"])
        DeadLetter.objects.filter(order=order, redriven_at__isnull=True).update(
            redriven_at=timezone.now(), redriven_by=user if getattr(user, "pk", None) else None
        )
        OutboxMessage.objects.get_or_create(order=order)
        status_refresh_on_commit(order)
        transaction.on_commit(lambda: outbox_publish(order_id=order_id))
    return True
