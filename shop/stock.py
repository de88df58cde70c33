"""Stock on hand as the merchant changes it (a count, a restock), never below what holds keep,
and the STOCK/PRODUCT/CHANGED event every change of stock or held writes to the unified log.

The legacy API, which owns the stock of record, writes the same event for orders and holds
(through `stock_changed_append`); the merchant's own changes are written here, so that the
deltas of a product's events always add up to its change on hand.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from events.models import Event
from events.services import event_append
from readmodels.stock_stamp import moves_available, stock_stamp_move
from shop.models import Product

DETAIL_TYPE = "State change Notification"
MERCHANT_SOURCE = "shop.merchant"


class StockReason:
    """Why a product's stock or held changed: `data.reason` of a STOCK/PRODUCT/CHANGED event."""

    ORDER = "order"
    HOLD_TAKEN = "hold_taken"
    HOLD_RESIZED = "hold_resized"
    HOLD_RELEASED = "hold_released"
    RESTOCK = "restock"
    # The merchant sets the figure on hand (a count, the demo's figures put back).
    ADJUSTED = "adjusted"


class StockBelowHeld(Exception):
    """Stock on hand may not go below what open holds keep; nothing was written."""

    def __init__(self, *, product: str, held: int):
        super().__init__(f"{product}: {held} units are held, so stock cannot be set below {held}.")
        self.product = product
        self.held = held


def stock_changed_append(
    *,
    source: str,
    product: str,
    on_hand: int,
    held: int,
    delta: int,
    held_delta: int,
    reason: str,
    **refs: str | None,
) -> Event:
    """One STOCK/PRODUCT/CHANGED event in the caller's transaction, with the figures after the
    change: `delta` is on hand's change and `held_delta` held's. `refs` name the cause
    (order=…, hold=…). The caller passes figures it already knows: no read here. The pages'
    stock stamp moves at the commit when on hand less held moved."""
    if moves_available({"delta": delta, "held_delta": held_delta}):
        stock_stamp_move()
    return event_append(
        source=source,
        detail_type=DETAIL_TYPE,
        type="STOCK",
        subtype="PRODUCT",
        status="CHANGED",
        data={
            "product": product,
            "on_hand": on_hand,
            "held": held,
            "available": max(on_hand - held, 0),
            "delta": delta,
            "held_delta": held_delta,
            "reason": reason,
            **refs,
        },
    )


def _products_locked(pks: Iterable[int]) -> list[Product]:
    # Primary-key order, as the legacy API locks them: a restock and an order cannot deadlock.
    queryset = Product.objects.filter(pk__in=list(pks)).order_by("pk")
    if connection.features.has_select_for_update:
        queryset = queryset.select_for_update(of=("self",), no_key=connection.features.has_select_for_no_key_update)
    return list(queryset)


def product_stock_set(
    *, product_id: int, stock: int, reason: str = StockReason.ADJUSTED, source: str = MERCHANT_SOURCE
) -> Product:
    """Sets the stock on hand to `stock` and logs the change; StockBelowHeld when open holds
    keep more than that. Setting the figure it already has writes nothing."""
    with transaction.atomic():
        (product,) = _products_locked([product_id])
        if stock < product.held:
            raise StockBelowHeld(product=product.slug, held=product.held)
        delta = stock - product.stock
        if delta:
            Product.objects.filter(pk=product.pk).update(stock=stock, updated_at=timezone.now())
            stock_changed_append(
                source=source,
                product=product.slug,
                on_hand=stock,
                held=product.held,
                delta=delta,
                held_delta=0,
                reason=reason,
            )
            product.stock = stock
    return product


# The most stock a product's record holds (PostgreSQL's integer, as the legacy API's receipts check).
STOCK_MAX = 2_147_483_647


class StockPastMax(Exception):
    """A restock that would take some product's stock past STOCK_MAX; nothing was restocked."""

    def __init__(self, products: list[str]):
        super().__init__(f"Stock would pass {STOCK_MAX:,} units for {', '.join(products)}: nothing was added.")
        self.products = products


def products_restock(*, product_ids: Iterable[int], quantity: int) -> int:
    """Adds `quantity` to each product's stock as it is now (not as a page last saw it) and
    logs each; returns how many products were restocked. Raises StockPastMax, nothing
    restocked, when that would take any of them past STOCK_MAX."""
    with transaction.atomic():
        products = _products_locked(product_ids)
        over = [product.slug for product in products if product.stock + quantity > STOCK_MAX]
        if over:
            raise StockPastMax(over)
        for product in products:
            Product.objects.filter(pk=product.pk).update(stock=F("stock") + quantity, updated_at=timezone.now())
            stock_changed_append(
                source=MERCHANT_SOURCE,
                product=product.slug,
                on_hand=product.stock + quantity,
                held=product.held,
                delta=quantity,
                held_delta=0,
                reason=StockReason.RESTOCK,
            )
    return len(products)
