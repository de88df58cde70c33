"""Goods received into the stock of record: a delivered purchase order adds its units on hand,
once per reference, with its STOCK event (reason restock) in the same transaction."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F

from legacy_api.events import StockReason, stock_moved_append
from legacy_api.exceptions import InvalidOrder, ReferenceReused
from legacy_api.models import StockReceipt
from legacy_api.selectors import products_lock, stock_get
from shop.models import Product

# The most stock on hand can be: PostgreSQL keeps the PositiveIntegerField in an integer.
MAX_STOCK = 2_147_483_647


def stock_receive(*, reference: str, product: str, quantity: int) -> tuple[dict, bool]:
    """Adds `quantity` on hand and returns the stock figures after, with True; the receipt
    already recorded under `reference` for the same product and quantity adds nothing and
    returns the figures now, with False. Raises InvalidOrder (no such product) or
    ReferenceReused."""
    existing = StockReceipt.objects.select_related("product").filter(reference=reference).first()
    if existing is not None:
        return _replayed(existing, product=product, quantity=quantity), False
    target = Product.objects.filter(slug=product, deleted_at__isnull=True).first()
    if target is None:
        raise InvalidOrder({"product": [f"Unknown product {product!r}."]})
    try:
        with transaction.atomic():
            StockReceipt.objects.create(reference=reference, product=target, quantity=quantity)
            locked = products_lock(pks=[target.pk])[target.slug]
            # Refused before the integer overflows (a 500), the receipt rolled back with it.
            if locked.stock + quantity > MAX_STOCK:
                raise InvalidOrder({"quantity": [f"Stock on hand would pass {MAX_STOCK:,} units."]})
            Product.objects.filter(pk=locked.pk).update(stock=F("stock") + quantity)
            stock_moved_append(
                product=locked,
                stock=locked.stock + quantity,
                held=locked.held,
                delta=quantity,
                held_delta=0,
                reason=StockReason.RESTOCK,
                receipt=reference,
            )
    except IntegrityError:
        # The same receipt recorded by a racing request: this one rolled back whole.
        existing = StockReceipt.objects.select_related("product").filter(reference=reference).first()
        if existing is None:
            raise
        return _replayed(existing, product=product, quantity=quantity), False
    return stock_get(product=product), True


def _replayed(receipt: StockReceipt, *, product: str, quantity: int) -> dict:
    if receipt.product.slug != product or receipt.quantity != quantity:
        raise ReferenceReused(reference=receipt.reference)
    return stock_get(product=product)
