"""Reads of the hot path: the cached hot product, the remaining allocation, the order-status
read model (kept by `orders.status`) and the merchants' queue figures."""

from __future__ import annotations

import hmac
import logging
import time
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count, F, OuterRef, Subquery, Sum
from django.utils import timezone

from orders.broker_depth import broker_queue_depth
from orders.models import HotOrder, OrderStage, OrderStatus, OutboxMessage, Reservation, SaleAllocation, SaleState
from orders.sale_terms import per_order_limit
from orders.status import STATUS_REFRESH_SECONDS, STATUS_TTL, status_cache_key, status_entry
from shop.catalogue_version import catalogue_version, replaced_here
from shop.models import Product

logger = logging.getLogger(__name__)

# The product page changes only when a merchant edits it (the cache is then dropped), so a
# long lifetime is safe; the remaining stock changes with every order, so it lives briefly.
PRODUCT_TTL = 600
REMAINING_TTL = 5
# Every order asks for its product: each process keeps a hot one this long before it asks the
# shared cache again, so a merchant's change reaches every process within this delay (and
# the acceptance statement checks the product again in the database).
PRODUCT_MEMO_SECONDS = 1.0
_products_here: dict[str, tuple[float, int, dict]] = {}


def product_memo_forget(product_slug: str | None = None) -> None:
    """Drops this process's copy of a product (of every product when no slug is given)."""
    if product_slug is None:
        _products_here.clear()
    else:
        _products_here.pop(product_slug, None)


def product_cache_key(product_slug: str) -> str:
    """Filed under the catalogue's version: any write to products or allocations replaces it;
    and under the shape's (v2: the limit per order lowered to what the price allows), so the
    processes of a new release never read what an old one cached."""
    return f"orders:product:v2:{catalogue_version()}:{product_slug}"


def remaining_cache_key(allocation_id: int) -> str:
    return f"orders:remaining:{allocation_id}"


def _hot_product_load(product_slug: str) -> dict:
    allocation = SaleAllocation.objects.select_related("product__category").filter(product__slug=product_slug).first()
    return {} if allocation is None else hot_product_data(allocation.product, allocation)


def hot_product_data(product: Product, allocation: SaleAllocation | None = None) -> dict:
    """The product and its sale as the sale's page and the order API read them; without a sale
    (the mini-site's page of a product none is set up for), none of a sale's figures."""
    data = {
        "product_id": product.pk,
        "slug": product.slug,
        "title": product.title,
        "description": product.description,
        "price_cents": product.price_cents,
        "picture_url": product.picture.url if product.picture else "",
        "category": product.category.slug,
        "category_name": product.category.name,
        "is_on_sale": product.is_on_sale,
    }
    if allocation is None:
        return {
            **data,
            **{"is_hot": False, "sale_state": "", "allocated": 0, "per_order_limit": 1},
            **{"starts_at": None, "ends_at": None},
        }
    return {
        **data,
        "allocation_id": allocation.pk,
        "is_hot": allocation.is_hot,
        "sale_state": allocation.state,
        "allocated": allocation.allocated,
        "per_order_limit": per_order_limit(allocation.per_order_limit, price_cents=product.price_cents),
        "starts_at": allocation.starts_at,
        "ends_at": allocation.ends_at,
    }


def hot_path_product_ids() -> set[int]:
    """The products the hot path serves now: their sale is open and they are on sale. Any
    other product's page, sent there by the edge, answers 404, but for one whose sale has
    ended (sale_ended_product_ids), which is shown as that sale's page, ended."""
    return set(
        SaleAllocation.objects.filter(is_hot=True, product__in=Product.objects.on_sale()).values_list(
            "product_id", flat=True
        )
    )


def sale_ended_product_ids() -> set[int]:
    """The products on sale whose sale has ended (closing or closed, switched off): the hot path
    shows their pages as the sale's, ended, to buyers the edge still sends there."""
    return set(
        SaleAllocation.objects.filter(
            is_hot=False, state__in=(SaleState.CLOSING, SaleState.CLOSED), product__in=Product.objects.on_sale()
        ).values_list("product_id", flat=True)
    )


def hot_product_get(*, category: str, product: str) -> dict | None:
    """The hot product as the buy-now page and the order API need it, from the cache.

    None when there is no such product under that category or it has no sale allocation.
    """
    data = _product_here(product)
    if data is None:
        generation = replaced_here()
        key = product_cache_key(product)
        data = cache.get(key)
        if data is None:
            data = _hot_product_load(product)
            cache.set(key, data, PRODUCT_TTL)
        if data and data["is_hot"]:
            _products_here[product] = (time.monotonic() + PRODUCT_MEMO_SECONDS, generation, data)
        else:
            # Kept only while hot (the sale's stampede is what the copy spares the cache): a sale
            # opened in another process would otherwise be "not hot" here for up to a second just
            # as its route sends the first buyers, who got a 404 page and `not_hot`.
            _products_here.pop(product, None)
    if not data or data["category"] != category:
        return None
    return data


def hot_product_from_database(*, category: str, product: str) -> dict | None:
    """`hot_product_get`'s answer read from the database alone: for a caller that must go on
    while the cache is away (the shop's own buy-now, which does not depend on it)."""
    data = _hot_product_load(product)
    return data if data and data["category"] == category else None


def _product_here(product: str) -> dict | None:
    memo = _products_here.get(product)
    if memo is not None and memo[0] > time.monotonic() and memo[1] == replaced_here():
        return memo[2]
    return None


def hot_product_here(*, category: str, product: str) -> dict | None:
    """`hot_product_get`'s answer from this process's copy alone, with no call to the cache or
    the database: None where it has no copy that is current (the caller then asks
    `hot_product_get`)."""
    data = _product_here(product)
    return data if data is not None and data["category"] == category else None


def hot_product_window(data: dict, now=None) -> str:
    """ "open", "not_started" or "ended" for the cached product data."""
    now = now or timezone.now()
    if data["starts_at"] and now < data["starts_at"]:
        return "not_started"
    if data["ends_at"] and now >= data["ends_at"]:
        return "ended"
    return "open"


def allocation_remaining(*, allocation_id: int) -> int:
    """Units still available, for pages: from the cache for up to REMAINING_TTL seconds (a
    refused reservation sets it too), else from the database. Acceptance does not trust it
    beyond "sold out": the reservation itself decides."""
    key = remaining_cache_key(allocation_id)
    remaining = cache.get(key)
    if remaining is None:
        row = (
            SaleAllocation.objects.filter(pk=allocation_id)
            .annotate(left=F("allocated") - F("reserved") - F("sold"))
            .values_list("left", flat=True)
            .first()
        )
        remaining = max(row or 0, 0)
        cache.set(key, remaining, REMAINING_TTL)
    return remaining


def order_status_get(*, number: str, token: str, product_id: int) -> dict | None:
    """The buyer's view of an order, from the read model (the database on a miss).

    None unless the number exists, belongs to this product and the token matches.
    """
    key = status_cache_key(number)
    entry = cache.get(key)
    # Writers refresh the entry after commit, in no guaranteed order across processes; an
    # order still processing, or failed (the legacy API may yet turn out to have placed it),
    # is re-read now and then, so a late stale write heals itself.
    stale = (
        entry is not None
        and entry["status"] in (OrderStatus.PROCESSING, OrderStatus.FAILED)
        and entry["cached_at"] < time.time() - STATUS_REFRESH_SECONDS
    )
    if entry is None or stale:
        order = HotOrder.objects.filter(number=number).first()
        if order is None:
            # Compare anyway, so an unknown number costs the same as a wrong token.
            hmac.compare_digest(token.encode(), b"x" * 43)
            return None
        entry = status_entry(order)
        if stale:
            cache.set(key, entry, STATUS_TTL)
        else:  # a miss: a writer's newer entry, stored since this read, is kept
            cache.add(key, entry, STATUS_TTL)
    if not hmac.compare_digest(token.encode(), entry["token"].encode()):
        return None
    if entry["product_id"] != product_id:
        return None
    return {k: entry[k] for k in ("number", "status", "stage", "detail")}


def product_id_get(*, category: str, product: str) -> int | None:
    """The product's id by its category's and its own slugs, from the database: for the status
    URLs of a product whose sale is gone (`hot_product_get` knows only products with one)."""
    return Product.objects.filter(slug=product, category__slug=category).values_list("pk", flat=True).first()


def order_by_key(*, idempotency_key: str) -> HotOrder | None:
    return HotOrder.objects.select_related("product__category").filter(idempotency_key=idempotency_key).first()


def queue_stats() -> dict:
    """Figures for the merchants' live view: what waits, what moves, what failed."""
    now = timezone.now()
    by_stage = dict(
        HotOrder.objects.filter(status=OrderStatus.PROCESSING)
        .values_list("stage")
        .annotate(n=Count("pk"))
        .values_list("stage", "n")
    )
    per_minute = []
    for minutes_ago in range(9, -1, -1):
        start = now - timedelta(minutes=minutes_ago + 1)
        end = now - timedelta(minutes=minutes_ago)
        per_minute.append(
            {
                "minute": end,
                "accepted": HotOrder.objects.filter(created_at__gte=start, created_at__lt=end).count(),
                # `completed_at` is when an order became final: placed, or failed (declined, sold out).
                **dict(
                    HotOrder.objects.filter(completed_at__gte=start, completed_at__lt=end)
                    .values_list("status")
                    .annotate(n=Count("pk"))
                    .values_list("status", "n")
                ),
            }
        )
    return {
        "outbox": OutboxMessage.objects.count(),
        "queued": by_stage.get(OrderStage.QUEUED, 0),
        "in_progress": by_stage.get(OrderStage.VALIDATING, 0),
        "dead_lettered": by_stage.get(OrderStage.DEAD_LETTERED, 0),
        "broker_depth": broker_queue_depth(),
        "per_minute": per_minute,
        "last_minute_accepted": per_minute[-1]["accepted"],
        "last_minute_completed": per_minute[-1].get(OrderStatus.COMPLETE, 0),
        "last_minute_failed": per_minute[-1].get(OrderStatus.FAILED, 0),
        "allocations": list(
            SaleAllocation.objects.select_related("product").filter(is_hot=True).order_by("product__title")
        ),
    }


def sale_hold_subquery() -> Subquery:
    """The hold a worker draws a hot order's units on, as a subquery of a query on hot
    orders: its product's sale's, while open or closing (a sale with orders holding units
    keeps its hold until they are settled, so it is the same when the order is sent)."""
    return Subquery(
        SaleAllocation.objects.filter(product_id=OuterRef("product_id"), state__in=[SaleState.OPEN, SaleState.CLOSING])
        .exclude(hold_reference="")
        .values_list("hold_reference", flat=True)[:1]
    )


def dead_letters_note(*, product_id: int) -> str:
    """For a merchant told a sale's units are still in orders in flight: those of them kept by
    dead-lettered orders, which no worker retries (a redrive or a cancel settles them), or ""."""
    units = HotOrder.objects.filter(
        product_id=product_id, stage=OrderStage.DEAD_LETTERED, reservation=Reservation.HELD
    ).aggregate(units=Sum("quantity"))["units"]
    if not units:
        return ""
    return (
        f" ({units} of them in dead-lettered orders, which no worker retries: "
        "redrive or cancel them under Hot path → Dead letters)"
    )
