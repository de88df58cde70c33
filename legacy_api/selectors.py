"""Reading orders, holds and stock of record; the row locks their services take."""

from __future__ import annotations

from django.db import connection
from django.db.models import Exists, OuterRef, Q

from legacy_api.models import Hold, Order, OrderReader
from shop.models import Product


def order_get_by_reference(*, reference: str) -> Order | None:
    return Order.objects.prefetch_related("lines").select_related("hold").filter(reference=reference).first()


def order_placed_get(*, order_id: int, caller: str) -> Order | None:
    """An order as `caller` may see it: placed (a pending row is a request still being worked on),
    and placed by it or read by it (OrderReader). Order ids are sequential: any other is None,
    as an order that does not exist."""
    readable = Q(caller=caller) | Exists(OrderReader.objects.filter(order=OuterRef("pk"), caller=caller))
    return (
        Order.objects.prefetch_related("lines")
        .select_related("hold")
        .filter(readable, pk=order_id, status=Order.Status.PLACED)
        .first()
    )


def hold_get(*, reference: str, caller: str) -> Hold | None:
    """`caller`'s hold under `reference`; None, as for no hold at all, when it took none."""
    return Hold.objects.select_related("product").filter(caller=caller, reference=reference).first()


# The most holds one listing answers. A caller keeps a handful open (one per sale): many more
# open ones are a sign of holds left behind.
HOLDS_LISTED_MAX = 500


def holds_list(*, caller: str, status: str | None = None, product: str | None = None) -> list[Hold]:
    """`caller`'s own holds, oldest first, at most HOLDS_LISTED_MAX: another caller's are never
    listed, as they are never found by reference. `status` and `product` (a slug) narrow it."""
    queryset = Hold.objects.select_related("product").filter(caller=caller)
    if status is not None:
        queryset = queryset.filter(status=status)
    if product is not None:
        queryset = queryset.filter(product__slug=product)
    return list(queryset.order_by("pk")[:HOLDS_LISTED_MAX])


def hold_lock(*, reference: str, caller: str) -> Hold | None:
    """`caller`'s hold, its row locked until the caller's transaction ends."""
    queryset = Hold.objects.select_related("product").filter(caller=caller, reference=reference)
    if connection.features.has_select_for_update:
        queryset = queryset.select_for_update(of=("self",), no_key=connection.features.has_select_for_no_key_update)
    return queryset.first()


def products_lock(*, pks: list[int]) -> dict[str, Product]:
    """The products by slug, locked in primary-key order so that two orders naming the same
    products in any order queue instead of deadlocking; FOR NO KEY UPDATE leaves inserts that
    reference them (order lines) free. Their supplier and category come in the same query (the
    order's event names them), unlocked."""
    queryset = Product.objects.select_related("supplier", "category").filter(pk__in=pks).order_by("pk")
    if connection.features.has_select_for_update:
        queryset = queryset.select_for_update(of=("self",), no_key=connection.features.has_select_for_no_key_update)
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
