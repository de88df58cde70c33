"""What a merchant does with a dead-lettered order: redrive it (the order queues again), or
cancel it when the legacy API will never place it (its units released, its card wiped), after
asking the legacy API whether it has the order after all."""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

import legacy_client
from legacy_client import OrderAnswer, Outcome
from orders.lifecycle import order_transition
from orders.models import DeadLetter, HotOrder, OrderStage, OutboxMessage
from orders.outbox import outbox_publish
from orders.placement import order_complete
from orders.sales import sale_order_settled
from orders.selectors import sale_hold_subquery

logger = logging.getLogger(__name__)

# Named, not imported: the tasks call the services, never the other way round.
SALE_SETTLE_TASK = "orders.tasks.sale_settle"


def order_redrive(*, order_id: int, user=None) -> bool:
    """Queues a dead-lettered order again; False when it is not dead-lettered."""
    with transaction.atomic():
        order = HotOrder.objects.select_for_update(of=("self",)).select_related("product").get(pk=order_id)
        if order.stage != OrderStage.DEAD_LETTERED or order.is_final:
            return False
        order_transition(order, to=OrderStage.QUEUED, detail=f"redriven by {user or 'a merchant'}")
        _dead_letters_settle(order, user=user)
        OutboxMessage.objects.get_or_create(order=order)
        transaction.on_commit(lambda: outbox_publish(order_id=order_id))
    return True


def _dead_letters_settle(order: HotOrder, *, user=None, resolution: str = "") -> None:
    """Marks the order's open dead letters settled by `user`: redriven, or as `resolution` says."""
    DeadLetter.objects.filter(order=order, redriven_at__isnull=True).update(
        redriven_at=timezone.now(), redriven_by=user if getattr(user, "pk", None) else None, resolution=resolution
    )


class CancelRefused(Exception):
    """The order was not cancelled and nothing was changed; the message says why, for the merchant."""


def order_cancel(*, order_id: int, user=None) -> HotOrder:
    """Gives up on a dead-lettered order, one the legacy API will never place (its reference
    used for another body, a body it finds invalid, a caller it refuses): cancelled, its units
    released and its card wiped; the buyer's status says nothing was charged.

    The legacy API is asked first whether it has the order after all (an attempt whose answer
    was lost): the buyer's 202 is a promise, so such an order is completed instead, and the
    buyer emailed, never cancelled. Returns the order as it ends (cancelled, or sent to
    fulfilment). Raises CancelRefused, nothing changed, for an order that is not dead-lettered,
    one a worker may still be placing (its claim lasts), or when the legacy API cannot say.

    The legacy API is asked outside the transaction (no lock is held across a call to another
    service), and the order is checked again under its lock: nothing sends a dead-lettered
    order, so what the legacy API said still holds unless a redrive came in between, and then
    the order is no longer dead-lettered."""
    order = _cancellable(order_id=order_id)
    answer = legacy_client.order_find(reference=order.reference, caller="hotpath")
    if answer.outcome == Outcome.IN_PROGRESS:
        raise CancelRefused("the order backend is still working on its reference; try again in a minute")
    if answer.outcome not in (Outcome.PLACED, Outcome.NOT_FOUND):
        raise CancelRefused(f"the order backend could not say whether it has the order ({answer}); try again later")
    with transaction.atomic():
        order = _cancellable(order_id=order_id, lock=True)
        if answer.outcome == Outcome.PLACED:
            order = _placed_after_all(order, answer=answer, user=user)
        else:
            order_transition(
                order,
                to=OrderStage.CANCELLED,
                detail=f"cancelled by {user or 'a merchant'}: the order backend has no order under its reference",
            )
            _dead_letters_settle(order, user=user, resolution="cancelled")
    _sale_settle(order_id=order_id)
    return order


def _cancellable(*, order_id: int, lock: bool = False) -> HotOrder:
    """The order (with its sale's hold), if a merchant may cancel it now; CancelRefused if not.
    A claim still running is a worker that may be talking to the legacy API about it."""
    orders = HotOrder.objects.select_related("product").annotate(db_now=Now(), sale_hold=sale_hold_subquery())
    if lock:
        orders = orders.select_for_update(of=("self",))
    order = orders.filter(pk=order_id).first()
    if order is None:
        raise CancelRefused("there is no such order")
    if order.stage != OrderStage.DEAD_LETTERED:
        raise CancelRefused(f"only a dead-lettered order can be cancelled, and this one is {order.get_stage_display()}")
    if order.claimed_until is not None and order.claimed_until > order.db_now:
        seconds = int((order.claimed_until - order.db_now).total_seconds()) + 1
        raise CancelRefused(f"a worker may still be placing it (its claim lasts {seconds} s more); try again then")
    return order


def _placed_after_all(order: HotOrder, *, answer: OrderAnswer, user=None) -> HotOrder:
    """The legacy API has the order the merchant meant to cancel: it is completed, as a worker
    completes one (order_complete), and its dead letters settled with that."""
    number = str(answer.data.get("number") or "")
    completed = order_complete(
        order_id=order.pk,
        legacy_order_id=answer.data.get("id"),
        legacy_number=number,
        from_hold=answer.data.get("hold") == order.sale_hold,
    )
    logger.warning(
        "order %s: cancelled by %s, but the legacy API had placed it (%s)", order.number, user or "a merchant", number
    )
    _dead_letters_settle(completed, user=user, resolution=f"placed after all ({number})"[:200])
    return completed


def _sale_settle(*, order_id: int) -> None:
    """A closing sale gives back what a final order no longer needs, as after a worker's
    outcome; when that cannot be done now (the sale busy, the legacy API away), the task asks
    again shortly, and the reconciliation follows what is left."""
    try:
        if sale_order_settled(order_id=order_id):
            return
    except Exception:  # the order's outcome is committed: its sale is followed up below
        logger.warning("order %s: its closing sale not followed yet", order_id, exc_info=True)
    try:
        current_app.send_task(SALE_SETTLE_TASK, args=[order_id], countdown=1)
    except Exception:  # broker away
        logger.warning("order %s: its closing sale is left to the reconciliation", order_id, exc_info=True)
