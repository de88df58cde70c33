"""The terms a sale may have, checked before any stock is asked: its units, its limit per order
(each within what the order backend takes), its window; and how a merchant is told no."""

from __future__ import annotations

from django.utils import timezone

import legacy_client
from orders.models import SaleAllocation, SaleState


class SaleRefused(Exception):
    """A merchant's request the sale cannot follow; `field` names the input to correct."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class SaleAlreadyOpen(SaleRefused):
    """An opening asked of a sale that is open: `allocation` is that sale."""

    def __init__(self, allocation):
        super().__init__(f"The sale of {allocation.product.slug} is already open.")
        self.allocation = allocation


def sale_terms_check(*, units: int, per_order_limit: int | None, starts_at=None, ends_at=None) -> None:
    """The checks that need no stock: raises SaleRefused naming the field."""
    if units < 1:
        raise SaleRefused("Allocate at least 1 unit.", field="allocated")
    if units > legacy_client.HOLD_QUANTITY_MAX:
        raise SaleRefused(
            f"At most {legacy_client.HOLD_QUANTITY_MAX:,} units: the most the stock of record holds for a sale.",
            field="allocated",
        )
    if per_order_limit is not None and per_order_limit < 1:
        raise SaleRefused("At least 1 unit per order.", field="per_order_limit")
    if per_order_limit is not None and per_order_limit > legacy_client.LINE_QUANTITY_MAX:
        # A buyer accepted for more would be refused by the order backend after their 202.
        raise SaleRefused(
            f"At most {legacy_client.LINE_QUANTITY_MAX} per order: the most the order backend takes in one order.",
            field="per_order_limit",
        )
    if per_order_limit is not None and per_order_limit > units:
        raise SaleRefused(f"At most {units} per order: the sale has {units} units.", field="per_order_limit")
    if starts_at and ends_at and ends_at <= starts_at:
        raise SaleRefused("The sale must end after it starts.", field="ends_at")
    if ends_at and ends_at <= timezone.now():
        raise SaleRefused("The sale's end is already past.", field="ends_at")


def per_order_limit(limit: int, *, price_cents: int) -> int:
    """The most one buyer may order: the sale's limit, lowered to what the order backend can
    total at this price (a 202 for more would be refused there after the buyer was told yes)."""
    if price_cents <= 0:
        return limit
    return max(1, min(limit, legacy_client.ORDER_TOTAL_MAX_CENTS // price_cents))


def per_order_limit_lowered(allocation: SaleAllocation) -> str | None:
    """What to tell a merchant whose limit per order buyers will not get at the product's
    price, or None."""
    price = allocation.product.price_cents
    allowed = per_order_limit(allocation.per_order_limit, price_cents=price)
    if allowed >= allocation.per_order_limit:
        return None
    return (
        f"Buyers may order at most {allowed} per order, not {allocation.per_order_limit}: at "
        f"${price / 100:,.2f} a unit, the order backend takes at most "
        f"${legacy_client.ORDER_TOTAL_MAX_CENTS / 100:,.2f} in one order."
    )


def draft_over_stock(allocation: SaleAllocation) -> bool:
    """A draft that asks for more units than its product has available in the stock of record:
    saved all the same (stock may arrive before the sale), but `sale_open` refuses it as it
    stands. Reads the product's own figures, as the stock of record keeps them, so a change
    list asks no service per row; the opening itself still asks the legacy API."""
    return allocation.state == SaleState.DRAFT and allocation.allocated > allocation.product.available
