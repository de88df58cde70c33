"""Placing orders of record: stock taken without overselling, the card authorised, all or nothing.

Callers answer a known reference before calling `order_place` (it is cheap and needs no
capacity slot); the unique constraint on the reference is what really stops an order from
being placed twice when two requests race.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from legacy_api.models import Order, OrderLine
from legacy_api.payments import payment_authorise
from legacy_api.selectors import order_get_by_reference
from shop.models import Product


class OrderError(Exception):
    """An order that cannot be placed; nothing was written."""


class InvalidOrder(OrderError):
    def __init__(self, fields: dict[str, list[str]]):
        super().__init__(f"invalid order: {', '.join(fields)}")
        self.fields = fields


class OutOfStock(OrderError):
    def __init__(self, *, product: str, line: int, available: int):
        super().__init__(f"{product}: only {available} in stock")
        self.product = product
        self.line = line
        self.available = available


class CardDeclined(OrderError):
    def __init__(self, *, reason: str):
        super().__init__(f"card declined: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class LineRequest:
    product: str
    quantity: int


def order_place(
    *, reference: str, customer_name: str, customer_email: str, lines: Sequence[LineRequest], card_number: str
) -> tuple[Order, bool]:
    """Places the order and returns it with True, or the order already placed under `reference`
    with False. Raises InvalidOrder, CardDeclined or OutOfStock, having written nothing."""
    started = time.monotonic()
    products = _products_on_sale(lines)
    amount_cents = sum(products[line.product].price_cents * line.quantity for line in lines)
    authorisation = payment_authorise(card_number=card_number, amount_cents=amount_cents)
    if not authorisation.approved:
        raise CardDeclined(reason=authorisation.decline_reason)
    # The CPU is spent before the transaction: no row lock is held while it burns.
    _order_work_cost(reference)
    try:
        with transaction.atomic():
            locked = _stock_take(lines, [products[line.product].pk for line in lines])
            order = Order.objects.create(
                reference=reference,
                customer_name=customer_name,
                customer_email=customer_email,
                card_last4=authorisation.last4,
                authorisation_code=authorisation.code,
                total_cents=sum(locked[line.product].price_cents * line.quantity for line in lines),
                processing_ms=int((time.monotonic() - started) * 1000),
            )
            OrderLine.objects.bulk_create(
                OrderLine(
                    order=order,
                    product=locked[line.product],
                    product_slug=line.product,
                    title=locked[line.product].title,
                    quantity=line.quantity,
                    unit_price_cents=locked[line.product].price_cents,
                )
                for line in lines
            )
            order.number = Order.number_for(order.pk)
            order.save(update_fields=["number"])
    except (IntegrityError, OrderError):
        # A request with the same reference may have won the race while this one waited for the
        # locks (the stock it took is then gone, or the unique constraint stopped the insert);
        # either way the whole transaction rolled back and that order is the answer.
        existing = order_get_by_reference(reference=reference)
        if existing is None:
            raise
        return existing, False
    return order, True


def _products_on_sale(lines: Sequence[LineRequest]) -> dict[str, Product]:
    """The products named by the lines, by slug; InvalidOrder names every line that cannot be sold."""
    products = {p.slug: p for p in Product.objects.filter(slug__in=[line.product for line in lines])}
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    for index, line in enumerate(lines):
        product = products.get(line.product)
        if line.product in seen:
            errors[f"lines.{index}.product"] = ["This product is already in another line; combine the quantities."]
        elif product is None or product.deleted_at is not None:
            errors[f"lines.{index}.product"] = [f"Unknown product {line.product!r}."]
        elif not product.is_active:
            errors[f"lines.{index}.product"] = [f"{product.title} is not on sale."]
        seen.add(line.product)
    if errors:
        raise InvalidOrder(errors)
    return products


def _stock_take(lines: Sequence[LineRequest], product_pks: list[int]) -> dict[str, Product]:
    """Takes every line's quantity from stock inside the caller's transaction, or raises.

    The rows are locked in primary-key order, so two orders naming the same products in any
    order queue instead of deadlocking; FOR NO KEY UPDATE leaves inserts that reference the
    products (order lines) free. The decrement is conditional as well, so stock can never go
    below zero even where the database has no row locks (SQLite serialises writers instead).
    """
    queryset = Product.objects.filter(pk__in=product_pks).order_by("pk")
    if connection.features.has_select_for_update:
        queryset = queryset.select_for_update(no_key=connection.features.has_select_for_no_key_update)
    locked = {product.slug: product for product in queryset}
    for index, line in enumerate(lines):
        product = locked[line.product]
        if not product.is_on_sale:
            raise InvalidOrder({f"lines.{index}.product": [f"{product.title} is not on sale."]})
        taken = Product.objects.filter(pk=product.pk, stock__gte=line.quantity).update(stock=F("stock") - line.quantity)
        if taken != 1:
            raise OutOfStock(product=product.slug, line=index, available=product.stock)
    return locked


def _order_work_cost(reference: str) -> None:
    """The CPU and memory one order costs the backend (the workshop's argon2 hash): it is what
    makes the backend's capacity small. Cheap under test settings."""
    hash_secret_raw(
        secret=reference.encode(),
        salt=os.urandom(16),
        time_cost=settings.LEGACY_ARGON2_TIME_COST,
        memory_cost=settings.LEGACY_ARGON2_MEMORY_KIB,
        parallelism=1,
        hash_len=32,
        type=Type.ID,
    )
