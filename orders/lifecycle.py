"""The hot order's state machine: which stage may follow which, and the one function that moves
an order along, with its stage history and its event in the log in the same transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from events.services import event_append, events_append
from orders.models import HotOrder, OrderStage, OrderStageEvent, OrderStatus, Reservation, SaleAllocation
from orders.selectors import remaining_cache_key
from orders.status import status_detail, status_refresh_on_commit
from shop.confirmations import order_confirmation_on_commit, order_email_withdraw
from shop.emails import CONFIRMED, NOT_PLACED, Confirmation

logger = logging.getLogger(__name__)

S = OrderStage
FAILURES = frozenset({S.CARD_DECLINED, S.SOLD_OUT, S.EXPIRED, S.CANCELLED})

# Every move the hot path makes, and no other. Acceptance writes `queued` (it has no "from").
TRANSITIONS: dict[str, frozenset[str]] = {
    # Claimed by a worker; or given up before any worker took it: its retries ran out on our
    # side (database, broker), or nobody took it before the reservation expired.
    S.QUEUED: frozenset({S.VALIDATING, S.DEAD_LETTERED, S.EXPIRED}),
    # The legacy API's answer, or retries that ran out while it was down or busy.
    S.VALIDATING: frozenset({S.PAYMENT_AUTHORISED, S.CARD_DECLINED, S.SOLD_OUT, S.DEAD_LETTERED}),
    S.PAYMENT_AUTHORISED: frozenset({S.SENT_TO_FULFILMENT}),
    S.SENT_TO_FULFILMENT: frozenset(),
    # Two deliveries of one order raced and the legacy API placed it after all: its record wins
    # over ours, so a failed order may still be completed (a merchant then tells the buyer).
    S.CARD_DECLINED: frozenset({S.PAYMENT_AUTHORISED}),
    S.SOLD_OUT: frozenset({S.PAYMENT_AUTHORISED}),
    S.EXPIRED: frozenset({S.PAYMENT_AUTHORISED}),
    # A merchant redrives it, or cancels it (dead_letters.order_cancel): the legacy API has no
    # order under its reference, so it is cancelled; or it has, and the order is completed.
    S.DEAD_LETTERED: frozenset({S.QUEUED, S.CANCELLED, S.PAYMENT_AUTHORISED}),
    # Cancelled only once the legacy API said it has no such order, and never sent again.
    S.CANCELLED: frozenset(),
}

SOURCE = "shop.hotpath"
EVENT_TYPE = "CHECKOUT"
EVENT_SUBTYPE = "ORDER"
# As shop.LEGO.com names a change of state, whatever its status.
DETAIL_TYPE = "State change Notification"
ACCEPTED = "ACCEPTED"
ACCEPTED_DETAIL = "accepted by the hot path"


class TransitionRefused(Exception):
    """The table of transitions does not allow this move; nothing was written."""

    def __init__(self, order: HotOrder, to: str, *, from_stage: str | None = None):
        from_stage = order.stage if from_stage is None else from_stage
        super().__init__(f"order {order.number or order.pk} cannot go from {from_stage} to {to}")
        self.from_stage = from_stage
        self.to_stage = to


def transition_allowed(from_stage: str, to: str) -> bool:
    return to in TRANSITIONS.get(from_stage, frozenset())


def status_for(stage: str) -> str:
    """What the buyer sees at each stage."""
    if stage == S.SENT_TO_FULFILMENT:
        return OrderStatus.COMPLETE
    if stage in FAILURES:
        return OrderStatus.FAILED
    return OrderStatus.PROCESSING


def event_status_for(from_stage: str | None, to: str) -> str:
    """The log's status of a move: one ACCEPTED and one terminal (COMPLETE or FAILED) per order."""
    if from_stage is None:
        return ACCEPTED
    if to == S.QUEUED:
        return "REDRIVEN"
    if to == S.SENT_TO_FULFILMENT:
        return "COMPLETE"
    if to in FAILURES:
        return "FAILED"
    return str(to).upper()


def order_event_data(
    order: HotOrder, *, product: str, from_stage: str | None, detail: str, units: tuple[int, int] = (0, 0)
) -> dict:
    """The event's data: what was ordered and where it stands, and what the move did to the
    sale's allocation (`reserved_delta`, `sold_delta`; an acceptance reserves its quantity);
    never card data."""
    data = {
        "number": order.number,
        "product": product,
        "quantity": order.quantity,
        "unit_price_cents": order.unit_price_cents,
        "total_cents": order.quantity * order.unit_price_cents,
        "stage": str(order.stage),
        "from_stage": None if from_stage is None else str(from_stage),
        "detail": detail[:500],
    }
    if from_stage is not None:
        data["reserved_delta"], data["sold_delta"] = units
    if order.stage == S.SENT_TO_FULFILMENT:
        data["legacy_number"] = order.legacy_number
    return data


def order_event_fields(
    order: HotOrder, *, from_stage: str | None, detail: str, product: str | None = None, units: tuple[int, int] = (0, 0)
) -> dict:
    """The event of a move, as `events.services.event_append` takes it (ACCEPT_SQL writes the
    same fields for the acceptance)."""
    status = event_status_for(from_stage, order.stage)
    return {
        "source": SOURCE,
        "detail_type": DETAIL_TYPE,
        "type": EVENT_TYPE,
        "subtype": EVENT_SUBTYPE,
        "status": status,
        "data": order_event_data(
            order, product=product or order.product.slug, from_stage=from_stage, detail=detail, units=units
        ),
        "resources": [order.number],
    }


def order_event_append(
    order: HotOrder, *, from_stage: str | None, detail: str, product: str | None = None, units: tuple[int, int] = (0, 0)
) -> None:
    event_append(**order_event_fields(order, from_stage=from_stage, detail=detail, product=product, units=units))


def order_accepted_record(order: HotOrder, *, product: str) -> None:
    """The ORM path of acceptance: the first history row and the ACCEPTED event (ACCEPT_SQL
    writes the same rows on PostgreSQL)."""
    OrderStageEvent.objects.create(order=order, stage=order.stage, detail=ACCEPTED_DETAIL, at=order.created_at)
    order_event_append(order, from_stage=None, detail=ACCEPTED_DETAIL, product=product)


def order_transition(
    order: HotOrder,
    *,
    to: str,
    detail: str = "",
    sold_from_hold: bool = True,
    save_also: Iterable[str] = (),
    via: Iterable[tuple[str, str]] = (),
) -> None:
    """Moves a locked order to stage `to`: the only code that changes an order's stage, status
    or reservation, or wipes its sealed card. Raises TransitionRefused for a move the table does
    not allow. Writes the stage history and the event in the caller's transaction, saves the
    order (with `save_also`, fields the caller set) and refreshes the buyer's view after commit.

    `via`: moves made first, each a (stage, detail), in the same write: every move is checked
    against the table before anything changes, the order is saved once, and the history rows
    and the events (one per move, in order) go in one INSERT each.

    `sold_from_hold`: on completion, whether the legacy API drew the units from the sale's
    hold; when it did not (the monolith placed that reference first), they go back on sale.

    An order that ends here (placed, or failed after its 202) has its buyer's email written in
    the same transaction, and sent once it commits: the buyer hears of it once."""
    moves = [*via, (to, detail)]
    stage = order.stage
    was_failed = stage in FAILURES
    for move_to, _ in moves:
        if not transition_allowed(stage, move_to):
            raise TransitionRefused(order, move_to, from_stage=stage)
        stage = move_to
    fields = {"stage", "status", "updated_at", *save_also}
    history, events = [], []
    # No savepoint of its own inside the caller's transaction (two round trips a move): a
    # failure here undoes the caller's whole transaction, which every caller lets happen.
    with transaction.atomic(savepoint=False):
        for move_to, move_detail in moves:
            from_stage = order.stage
            units = _move(order, to=move_to, sold_from_hold=sold_from_hold, fields=fields)
            history.append(OrderStageEvent(order=order, stage=move_to, detail=move_detail[:500]))
            events.append(order_event_fields(order, from_stage=from_stage, detail=move_detail, units=units))
        order.save(update_fields=sorted(fields))
        if len(history) == 1:
            history[0].save(force_insert=True)
            event_append(**events[0])
        else:
            OrderStageEvent.objects.bulk_create(history)
            events_append(events)
        status_refresh_on_commit(order)
        if order.stage == S.SENT_TO_FULFILMENT or order.stage in FAILURES:
            _buyer_tell(order, was_failed=was_failed)


def _buyer_tell(order: HotOrder, *, was_failed: bool) -> None:
    """The buyer's email of how their order ended: confirmed, or not placed and why."""
    placed = order.stage == S.SENT_TO_FULFILMENT
    if placed and was_failed:  # found placed after all: an unsent "not placed" would come last
        order_email_withdraw(number=order.number, kind=NOT_PLACED)
    order_confirmation_on_commit(
        Confirmation(
            number=order.number,
            name=order.customer_name,
            email=order.customer_email,
            lines=[(order.product.title, order.quantity)],
            total_cents=order.total_cents,
            kind=CONFIRMED if placed else NOT_PLACED,
            reason="" if placed else status_detail(order),
            legacy_id=order.legacy_order_id if placed else None,
        )
    )


def _move(order: HotOrder, *, to: str, sold_from_hold: bool, fields: set[str]) -> tuple[int, int]:
    """One move's changes to the order (not saved) and to the sale's allocation; adds the
    order's changed fields to `fields` and returns the change to (reserved, sold)."""
    order.stage = to
    order.status = status_for(to)
    units = (0, 0)
    if to == S.SENT_TO_FULFILMENT:
        units = _units_sell(order) if sold_from_hold else _units_release(order)
    elif to in FAILURES:
        units = _units_release(order)
    elif to == S.QUEUED:
        # Redriven: a fresh deadline, so the sweep does not expire it before a worker runs.
        order.reserved_until = timezone.now() + timedelta(seconds=settings.ORDERS_RESERVATION_SECONDS)
        fields.add("reserved_until")
    if order.status != OrderStatus.PROCESSING:
        # Only a worker sending the order needs the card: a final order keeps none of it.
        order.card_sealed = ""
        order.completed_at = timezone.now()
        fields |= {"reservation", "card_sealed", "completed_at"}
    return units


def _units_release(order: HotOrder) -> tuple[int, int]:
    """Gives a held reservation back to the allocation; returns the change to (reserved, sold)."""
    if order.reservation != Reservation.HELD:
        return (0, 0)
    released = SaleAllocation.objects.filter(product_id=order.product_id, reserved__gte=order.quantity).update(
        reserved=F("reserved") - order.quantity
    )
    order.reservation = Reservation.RELEASED
    _remaining_forget(order)
    return (-order.quantity, 0) if released else (0, 0)


def _units_sell(order: HotOrder) -> tuple[int, int]:
    """Turns the reservation into a sale; returns the change to (reserved, sold)."""
    units = (0, 0)
    if order.reservation == Reservation.HELD:
        sold = SaleAllocation.objects.filter(product_id=order.product_id, reserved__gte=order.quantity).update(
            reserved=F("reserved") - order.quantity, sold=F("sold") + order.quantity
        )
        units = (-order.quantity, order.quantity) if sold else units
    elif order.reservation == Reservation.RELEASED:
        # Released (failed) while the legacy API placed it after all: count the sale if the
        # allocation still has room; the legacy API's stock is the record either way.
        counted = SaleAllocation.objects.filter(
            product_id=order.product_id, allocated__gte=F("reserved") + F("sold") + order.quantity
        ).update(sold=F("sold") + order.quantity)
        if not counted:
            logger.warning("order %s was placed after its reservation was released", order.number)
        units = (0, order.quantity) if counted else units
        _remaining_forget(order)
    # Held to sold leaves `allocated - reserved - sold` as it was: the cached figure stands.
    order.reservation = Reservation.CONFIRMED
    return units


def _remaining_forget(order: HotOrder) -> None:
    allocation_id = SaleAllocation.objects.filter(product_id=order.product_id).values_list("pk", flat=True).first()
    if allocation_id is not None:
        transaction.on_commit(lambda: cache.delete(remaining_cache_key(allocation_id)))
