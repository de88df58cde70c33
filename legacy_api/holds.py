"""Holds on the stock of record: units of a product kept aside for one caller (a sale's
allocation), so that no other channel can sell them.

A hold is its caller's, and so are its references: another caller finds no hold under one
(HoldNotFound), and may take a hold of its own under it. Called in-process rather than over
HTTP, these act for the hot path, the caller that takes the sales' holds.

Every change to a hold changes Product.held in the same transaction, with a conditional
UPDATE (never check-then-act), so the sum over open holds never exceeds what is on hand and
the database's check constraint (0 <= held <= stock) is never the thing that says no. Rows are
locked hold first, then product, as order placement does. Each change appends its HOLD event
and its STOCK event to the unified log in the same transaction.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F

from legacy_api.events import StockReason, hold_changed_append, stock_moved_append
from legacy_api.exceptions import HoldNotFound, HoldReleased, InvalidOrder, OutOfStock, ReferenceReused
from legacy_api.models import Hold
from legacy_api.selectors import hold_get, hold_lock
from legacy_api.tokens import HOTPATH
from shop.models import Product


def hold_create(*, reference: str, product: str, quantity: int, caller: str = HOTPATH) -> tuple[Hold, bool]:
    """Holds `quantity` units of `product` for `caller` and returns the hold with True; the hold
    `caller` already made under `reference` with the same product and quantity is returned with
    False. Raises OutOfStock (fewer available), InvalidOrder (no such product on sale) or
    ReferenceReused."""
    existing = hold_get(reference=reference, caller=caller)
    if existing is not None:
        return _replayed(existing, product=product, quantity=quantity), False
    target = Product.objects.filter(slug=product, deleted_at__isnull=True).first()
    if target is None:
        raise InvalidOrder({"product": [f"Unknown product {product!r}."]})
    if not target.is_active:
        raise InvalidOrder({"product": [f"{target.title} is not on sale."]})
    try:
        with transaction.atomic():
            figures = _held_add(product=target, units=quantity)
            hold = Hold.objects.create(
                caller=caller, reference=reference, product=target, requested=quantity, quantity=quantity
            )
            _moved(hold, figures, held_delta=quantity, reason=StockReason.HOLD_TAKEN)
            hold_changed_append(
                status="TAKEN", reference=reference, product=target.slug, quantity=quantity, change=quantity
            )
    except IntegrityError:
        # The same reference was created by a racing request; its units are not taken twice
        # because this transaction rolled back with the insert.
        existing = hold_get(reference=reference, caller=caller)
        if existing is None:
            raise
        return _replayed(existing, product=product, quantity=quantity), False
    return hold, True


def hold_resize(*, reference: str, quantity: int, caller: str = HOTPATH) -> Hold:
    """Sets what `caller`'s hold keeps: grows it from available stock (OutOfStock when short) or
    gives units back. Raises HoldNotFound or HoldReleased."""
    with transaction.atomic():
        hold = hold_lock(reference=reference, caller=caller)
        if hold is None:
            raise HoldNotFound(reference=reference)
        if hold.status == Hold.Status.RELEASED:
            raise HoldReleased(reference=reference)
        change = quantity - hold.quantity
        if change > 0:
            _moved(hold, _held_add(product=hold.product, units=change), held_delta=change)
        elif change < 0:
            _moved(hold, _held_remove(product=hold.product, units=-change), held_delta=change)
        hold.quantity = quantity
        hold.save(update_fields=["quantity", "updated_at"])
        if change:
            hold_changed_append(
                status="RESIZED", reference=reference, product=hold.product.slug, quantity=quantity, change=change
            )
    return hold


def hold_release(*, reference: str, caller: str = HOTPATH) -> Hold:
    """Gives back whatever `caller`'s hold still keeps and closes it; releasing it again changes
    nothing. Raises HoldNotFound."""
    with transaction.atomic():
        hold = hold_lock(reference=reference, caller=caller)
        if hold is None:
            raise HoldNotFound(reference=reference)
        if hold.status == Hold.Status.RELEASED:
            return hold
        given_back = hold.quantity
        if given_back:
            figures = _held_remove(product=hold.product, units=given_back)
            _moved(hold, figures, held_delta=-given_back, reason=StockReason.HOLD_RELEASED)
        hold.quantity = 0
        hold.status = Hold.Status.RELEASED
        hold.save(update_fields=["quantity", "status", "updated_at"])
        hold_changed_append(
            status="RELEASED", reference=reference, product=hold.product.slug, quantity=0, change=-given_back
        )
    return hold


def hold_draw(*, hold: Hold, product: Product, units: int, line: int) -> None:
    """Takes an order line's units from the hold (and from stock and held together), inside the
    caller's transaction; OutOfStock when the hold keeps fewer."""
    drawn = Hold.objects.filter(pk=hold.pk, status=Hold.Status.OPEN, quantity__gte=units).update(
        quantity=F("quantity") - units
    )
    if drawn != 1:
        left = Hold.objects.filter(pk=hold.pk).values_list("quantity", flat=True).first() or 0
        raise OutOfStock(product=product.slug, available=left, line=line)
    taken = Product.objects.filter(pk=product.pk, held__gte=units, stock__gte=units).update(
        stock=F("stock") - units, held=F("held") - units
    )
    if taken != 1:  # held out of step with the holds: refuse rather than sell unheld units
        raise OutOfStock(product=product.slug, available=0, line=line)


def _replayed(hold: Hold, *, product: str, quantity: int) -> Hold:
    if hold.product.slug != product or hold.requested != quantity:
        raise ReferenceReused(reference=hold.reference)
    return hold


def _figures(product: Product) -> tuple[int, int]:
    # Read after this transaction's UPDATE, whose row lock keeps them until COMMIT: exact.
    return Product.objects.filter(pk=product.pk).values_list("stock", "held").get()


def _held_add(*, product: Product, units: int) -> tuple[int, int]:
    """Adds to held and returns (stock, held) after; OutOfStock when fewer are available."""
    added = Product.objects.filter(pk=product.pk, stock__gte=F("held") + units).update(held=F("held") + units)
    if added != 1:
        stock, held = _figures(product)
        raise OutOfStock(product=product.slug, available=max(stock - held, 0))
    return _figures(product)


def _held_remove(*, product: Product, units: int) -> tuple[int, int] | None:
    """Takes from held and returns (stock, held) after; None when held was out of step with
    the holds and nothing changed (left to the reconciliation, as before)."""
    removed = Product.objects.filter(pk=product.pk, held__gte=units).update(held=F("held") - units)
    return _figures(product) if removed == 1 else None


def _moved(
    hold: Hold, figures: tuple[int, int] | None, *, held_delta: int, reason: str = StockReason.HOLD_RESIZED
) -> None:
    if figures is not None:
        stock, held = figures
        stock_moved_append(
            product=hold.product,
            stock=stock,
            held=held,
            delta=0,
            held_delta=held_delta,
            reason=reason,
            hold=hold.reference,
        )
