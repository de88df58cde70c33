"""The stock of record's events in the unified log: orders placed, stock changed, holds moved.

Each is one INSERT through events' services, made inside the transaction that already makes
the change, so an event exists if and only if its change was committed. The figures after a
change come from the row the caller locked or just updated: no extra work here. Card data
never goes into an event.
"""

from __future__ import annotations

from events.models import Event
from events.services import event_append
from shop.models import Product
from shop.stock import DETAIL_TYPE, StockReason, stock_changed_append

__all__ = ["StockReason", "hold_changed_append", "order_line", "order_placed_append", "stock_moved_append"]

ORDERS_SOURCE = "legacy.orders"
STOCK_SOURCE = "legacy.stock"
HOLDS_SOURCE = "legacy.holds"


def order_line(*, product: Product, quantity: int, unit_price_cents: int | None = None) -> dict:
    """One line of ORDER/RECORD/PLACED from the locked product row (its supplier and category
    selected with it). It names the product's supplier (None: it has none) and category as they
    were when the order was placed, so a read model folding the event, then or in a rebuild long
    after, counts the sale where it was made, wherever the merchant has moved the product since.
    `unit_price_cents`: what the line was sold at, when not the product's price now."""
    return {
        "product": product.slug,
        "quantity": quantity,
        "unit_price_cents": product.price_cents if unit_price_cents is None else unit_price_cents,
        "supplier": product.supplier.name if product.supplier is not None else None,
        "category": product.category.slug,
    }


def order_placed_append(*, number: str, reference: str, lines: list[dict], total_cents: int, hold: str | None) -> Event:
    """ORDER/RECORD/PLACED; `lines` as order_line makes them."""
    return event_append(
        source=ORDERS_SOURCE,
        detail_type=DETAIL_TYPE,
        type="ORDER",
        subtype="RECORD",
        status="PLACED",
        data={"number": number, "reference": reference, "lines": lines, "total_cents": total_cents, "hold": hold},
    )


def stock_moved_append(
    *, product: Product, stock: int, held: int, delta: int, held_delta: int, reason: str, **refs: str | None
) -> Event:
    """STOCK/PRODUCT/CHANGED from the stock of record; `stock` and `held` are the figures after."""
    return stock_changed_append(
        source=STOCK_SOURCE,
        product=product.slug,
        on_hand=stock,
        held=held,
        delta=delta,
        held_delta=held_delta,
        reason=reason,
        **refs,
    )


def hold_changed_append(*, status: str, reference: str, product: str, quantity: int, change: int) -> Event:
    """HOLD/HOLD/TAKEN, RESIZED or RELEASED: what the hold keeps now, and by how much that moved."""
    return event_append(
        source=HOLDS_SOURCE,
        detail_type=DETAIL_TYPE,
        type="HOLD",
        subtype="HOLD",
        status=status,
        data={"reference": reference, "product": product, "quantity": quantity, "change": change},
    )
