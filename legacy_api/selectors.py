"""Reading orders, holds and stock of record; the row locks their services take."""

from __future__ import annotations

from django.db import connection

from legacy_api.models import Hold, Order
from shop.models import Product


def order_get(*, order_id: int) -> Order | None:
    return Order.objects.prefetch_related("lines").select_related("hold").filter(pk=order_id).first()


def order_get_by_reference(*, reference: str) -> Order | None:
    return Order.objects.prefetch_related("lines").select_related("hold").filter(reference=reference).first()


def order_placed_get(*, order_id: int) -> Order | None:
    """An order as callers may see it: placed (a pending row is a request still being worked on)."""
    order = order_get(order_id=order_id)
    return order if order is not None and order.status == Order.Status.PLACED else None


def hold_get(*, reference: str) -> Hold | None:
    return Hold.objects.select_related("product").filter(reference=reference).first()


def hold_lock(*, reference: str) -> Hold | None:
    """The hold, its row locked until the caller's transaction ends."""
    queryset = Hold.objects.select_related("product").filter(reference=reference)
    if connection.features.has_select_for_update:
        queryset = queryset.select_for_update(of=("self",), no_key=connection.features.has_select_for_no_key_update)
    return queryset.first()


def products_lock(*, pks: list[int]) -> dict[str, Product]:
    """The products by slug, locked in primary-key order so that two orders naming the same
    products in any order queue instead of deadlocking; FOR NO KEY UPDATE leaves inserts that
    reference them (order lines) free."""
    queryset = Product.objects.filter(pk__in=pks).order_by("pk")
    if connection.features.has_select_for_update:
        queryset = queryset.select_for_update(no_key=connection.features.has_select_for_no_key_update)
    return {product.slug: product for product in queryset}


def stock_get(*, product: str) -> dict | None:
    """What the stock of record says of a product: on hand, held by open holds, available."""
    row = Product.objects.filter(slug=product, deleted_at__isnull=True).values("slug", "stock", "held").first()
    if row is None:
        return None
    return {
        "product": row["slug"],
        "on_hand": row["stock"],
        "held": row["held"],
        "available": max(row["stock"] - row["held"], 0),
    }
