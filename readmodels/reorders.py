"""Vendor reorders: a draft purchase order when a product's available stock falls below its
reorder point, once per crossing; a merchant confirms or cancels it, and receiving a confirmed
one restocks the product through the legacy API. Each step is a PURCHASE/ORDER event.

The `reorders` consumer watches the stock of record's STOCK/PRODUCT/CHANGED events. Each
carries the figures after its change and the change itself, both exact within its transaction,
so exactly one event takes a product from at or above its point to below it, however many
orders race: that event drafts. The database makes sure of it too: at most one draft per
product (a partial unique index), so a second drafting of the same crossing finds the first,
and at most one purchase order per event. Each crossing is recorded with the purchase order
that answered it (`ReorderCrossing`), the draft already open included, so a replay of the log
drafts nothing again, even for a crossing whose draft has since been received."""

from __future__ import annotations

import logging
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

import legacy_client
from events.models import Event
from events.services import event_append
from readmodels.models import PurchaseOrder, ReorderCrossing
from shop.models import Product

logger = logging.getLogger(__name__)

SOURCE = "shop.reorders"
S = PurchaseOrder.Status


class PurchaseRefused(Exception):
    """The purchase order is not in a state that allows this step; nothing was done."""


def _crossing(event: Event) -> tuple[int, int] | None:
    """(available before, available after) of a change of stock; None for other events."""
    if (event.type, event.subtype, event.status) != ("STOCK", "PRODUCT", "CHANGED"):
        return None
    data = event.data
    after = int(data["on_hand"]) - int(data["held"])
    before = (int(data["on_hand"]) - int(data.get("delta") or 0)) - (
        int(data["held"]) - int(data.get("held_delta") or 0)
    )
    return before, after


def _append(order: PurchaseOrder, status: str, **extra) -> None:
    event_append(
        source=SOURCE,
        detail_type="State change Notification",
        type="PURCHASE",
        subtype="ORDER",
        status=status,
        data={
            "reference": order.reference,
            "product": order.product.slug,
            "supplier": order.supplier.name if order.supplier else None,
            "quantity": order.quantity,
            **extra,
        },
        resources=[order.reference],
    )


def reorder_quantity(product: Product, available: int) -> int:
    """Enough to bring available stock back to twice the reorder point."""
    return max(2 * product.reorder_point - max(available, 0), 1)


def purchase_order_draft(*, product: Product, available: int, event_position: int | None = None) -> PurchaseOrder:
    """The product's draft purchase order: made now, or the one already open (the database
    holds one draft per product at most)."""
    try:
        with transaction.atomic():
            order = PurchaseOrder.objects.create(
                reference=f"PO-{uuid.uuid4().hex[:12].upper()}",
                product=product,
                supplier=product.supplier,
                quantity=reorder_quantity(product, available),
                available_then=available,
                reorder_point=product.reorder_point,
                event_position=event_position,
            )
            _append(order, "DRAFTED", available=available, reorder_point=product.reorder_point)
            return order
    except IntegrityError:
        drafted = PurchaseOrder.objects.filter(product=product, status=S.DRAFT)
        if event_position is not None:
            drafted = PurchaseOrder.objects.filter(event_position=event_position) | drafted
        existing = drafted.first()
        if existing is None:
            raise
        return existing


def handle(event: Event) -> None:
    """The consumer: drafts a purchase order when a change takes a product below its point."""
    figures = _crossing(event)
    if figures is None:
        return
    before, after = figures
    product = Product.objects.select_related("supplier").filter(slug=event.data["product"]).first()
    if product is None or not product.reorder_point:
        return
    if before >= product.reorder_point > after:
        answered = ReorderCrossing.objects.filter(event_position=event.position).exists()
        if answered or PurchaseOrder.objects.filter(event_position=event.position).exists():
            return  # this crossing was answered already: the event is replayed (events replay reorders)
        order = purchase_order_draft(product=product, available=after, event_position=event.position)
        ReorderCrossing.objects.get_or_create(event_position=event.position, defaults={"purchase_order": order})


def _moved(order_id: int, *, from_status: str, to: str, user=None, **extra) -> PurchaseOrder:
    with transaction.atomic():
        moved = PurchaseOrder.objects.filter(pk=order_id, status=from_status).update(
            status=to, decided_by=user, updated_at=timezone.now()
        )
        order = PurchaseOrder.objects.select_related("product", "supplier").get(pk=order_id)
        if not moved:
            raise PurchaseRefused(f"{order.reference} is {order.status}, not {from_status}.")
        _append(order, to.upper(), **extra)
    return order


def purchase_order_confirm(*, order_id: int, user=None) -> PurchaseOrder:
    return _moved(order_id, from_status=S.DRAFT, to=S.CONFIRMED, user=user)


def purchase_order_cancel(*, order_id: int, user=None) -> PurchaseOrder:
    return _moved(order_id, from_status=S.DRAFT, to=S.CANCELLED, user=user)


def purchase_order_receive(*, order_id: int, user=None) -> PurchaseOrder:
    """Restocks the product in the stock of record (idempotent on the order's reference), then
    marks the order received. Raises PurchaseRefused, LegacyRefused or LegacyUnavailable (the
    order stays confirmed: receiving it again is safe)."""
    order = PurchaseOrder.objects.select_related("product").get(pk=order_id)
    if order.status != S.CONFIRMED:
        raise PurchaseRefused(f"{order.reference} is {order.status}, not confirmed.")
    stock = legacy_client.stock_receive(
        reference=order.reference, product=order.product.slug, quantity=order.quantity, caller="merchant"
    )
    return _moved(order_id, from_status=S.CONFIRMED, to=S.RECEIVED, user=user, on_hand=stock.on_hand)


handle.wants = lambda event: _crossing(event) is not None
