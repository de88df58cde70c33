"""Holds on the stock of record: units of a product kept aside for one caller (a sale's
allocation), so that no other channel can sell them.

Every change to a hold changes Product.held in the same transaction, with a conditional
UPDATE (never check-then-act), so the sum over open holds never exceeds what is on hand and
the database's check constraint (0 <= held <= stock) is never the thing that says no. Rows are
locked hold first, then product, as order placement does.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F

from legacy_api.exceptions import HoldNotFound, HoldReleased, InvalidOrder, OutOfStock, ReferenceReused
from legacy_api.models import Hold
from legacy_api.selectors import hold_get, hold_lock
from shop.models import Product


def hold_create(*, reference: str, product: str, quantity: int) -> tuple[Hold, bool]:
    """Holds `quantity` units of `product` and returns the hold with True; the hold already made
    under `reference` with the same product and quantity is returned with False. Raises
    OutOfStock (fewer available), InvalidOrder (no such product on sale) or ReferenceReused."""
    existing = hold_get(reference=reference)
    if existing is not None:
        return _replayed(existing, product=product, quantity=quantity), False
    target = Product.objects.filter(slug=product, deleted_at__isnull=True).first()
    if target is None:
        raise InvalidOrder({"product": [f"Unknown product {product!r}."]})
    if not target.is_active:
        raise InvalidOrder({"product": [f"{target.title} is not on sale."]})
    try:
        with transaction.atomic():
            _held_add(product=target, units=quantity)
            hold = Hold.objects.create(reference=reference, product=target, requested=quantity, quantity=quantity)
    except IntegrityError:
        # The same reference was created by a racing request; its units are not taken twice
        # because this transaction rolled back with the insert.
        existing = hold_get(reference=reference)
        if existing is None:
            raise
        return _replayed(existing, product=product, quantity=quantity), False
    return hold, True


def hold_resize(*, reference: str, quantity: int) -> Hold:
    """Sets what the hold keeps: grows it from available stock (OutOfStock when short) or gives
    units back. Raises HoldNotFound or HoldReleased."""
    with transaction.atomic():
        hold = hold_lock(reference=reference)
        if hold is None:
            raise HoldNotFound(reference=reference)
        if hold.status == Hold.Status.RELEASED:
            raise HoldReleased(reference=reference)
        change = quantity - hold.quantity
        if change > 0:
            _held_add(product=hold.product, units=change)
        elif change < 0:
            _held_remove(product=hold.product, units=-change)
        hold.quantity = quantity
        hold.save(update_fields=["quantity", "updated_at"])
    return hold


def hold_release(*, reference: str) -> Hold:
    """Gives back whatever the hold still keeps and closes it; releasing it again changes nothing."""
    with transaction.atomic():
        hold = hold_lock(reference=reference)
        if hold is None:
            raise HoldNotFound(reference=reference)
        if hold.status == Hold.Status.RELEASED:
            return hold
        if hold.quantity:
            _held_remove(product=hold.product, units=hold.quantity)
        hold.quantity = 0
        hold.status = Hold.Status.RELEASED
        hold.save(update_fields=["quantity", "status", "updated_at"])
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


def _held_add(*, product: Product, units: int) -> None:
    added = Product.objects.filter(pk=product.pk, stock__gte=F("held") + units).update(held=F("held") + units)
    if added != 1:
        now = Product.objects.filter(pk=product.pk).values("stock", "held").get()
        raise OutOfStock(product=product.slug, available=max(now["stock"] - now["held"], 0))


def _held_remove(*, product: Product, units: int) -> None:
    Product.objects.filter(pk=product.pk, held__gte=units).update(held=F("held") - units)
