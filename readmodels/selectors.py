"""Reads of the read models: a product's stock for the storefront's badges and the sale page,
sales per minute, the tallies, reorders and low stock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.cache import cache
from django.db import connection
from django.db.models import F, Sum
from django.utils import timezone

from orders.models import SaleAllocation
from readmodels.inventory import SALE_STATES, remaining_key, remaining_publish
from readmodels.inventory import VIEW as INVENTORY
from readmodels.models import Generation, InventoryLevel, PurchaseOrder, Tally
from readmodels.sales import SALES_PER_MINUTE, TALLIES
from shop.models import LOW_STOCK, Category, Product

# The view's word for a sale that is taking orders.
SALE_OPEN = SALE_STATES["OPENED"]


@dataclass(frozen=True)
class StockFigures:
    available: int
    # sold_out, low or in_stock: what the shopper's badge says.
    state: str


def _state(available: int) -> str:
    if available <= 0:
        return "sold_out"
    return "low" if available <= LOW_STOCK else "in_stock"


def inventory_get(*, product: str) -> InventoryLevel | None:
    return INVENTORY.live_rows().filter(product=product).first()


def product_stock(*, product: Product) -> StockFigures:
    """What the storefront's stock badge says of a product: the inventory view's available
    units, or the catalogue's own figures for a product the view has not seen yet."""
    row = inventory_get(product=product.slug)
    available = row.available if row is not None else product.available
    return StockFigures(available=available, state=_state(available))


def sale_remaining(*, product: str) -> int | None:
    """Units left in the product's open sale ("only N left"), from the inventory view as its
    consumer publishes it to the cache at each change (the view itself on a miss); None when
    the view has not seen the sale open (the caller then asks the allocation)."""
    remaining = cache.get(remaining_key(product))
    if remaining is None:
        remaining = remaining_publish(product=product)
    return None if remaining < 0 else remaining


def inventory_figures(*, product: str) -> dict | None:
    """The view's figures of one product, as `sale status --json` shows them."""
    row = inventory_get(product=product)
    if row is None:
        return None
    return {
        "on_hand": row.on_hand,
        "held": row.held,
        "available": row.available,
        "sale_state": row.sale_state or None,
        "allocated": row.allocated,
        "reserved": row.reserved,
        "sold": row.sold,
        "remaining": row.remaining,
    }


def inventory_all() -> list[InventoryLevel]:
    return list(INVENTORY.live_rows().order_by("product"))


def sales_per_minute(*, since: datetime | None = None) -> list[dict]:
    """Orders, units and revenue per minute (every product and channel added up), oldest first."""
    rows = SALES_PER_MINUTE.live_rows()
    if since is not None:
        rows = rows.filter(minute__gte=since)
    return list(
        rows.values("minute")
        .annotate(orders=Sum("orders"), units=Sum("units"), revenue_cents=Sum("revenue_cents"))
        .order_by("minute")
    )


def sales_totals() -> dict:
    totals = SALES_PER_MINUTE.live_rows().aggregate(
        orders=Sum("orders"), units=Sum("units"), revenue_cents=Sum("revenue_cents")
    )
    return {name: value or 0 for name, value in totals.items()}


def tallies_top(*, kind: str, limit: int = 5) -> list[Tally]:
    return list(TALLIES.live_rows().filter(kind=kind).order_by("-revenue_cents", "key")[:limit])


def category_names(*, slugs: list[str]) -> dict[str, str]:
    """The categories' names by slug (a category since deleted is missing)."""
    return dict(Category.objects.filter(slug__in=slugs).values_list("slug", "name"))


def low_stock(*, limit: int = 10) -> list[dict]:
    """Products whose available stock is below their reorder point, lowest first, each with
    its title (read with the reorder points: no query a product)."""
    products = {
        slug: (point, title)
        for slug, point, title in Product.objects.on_sale()
        .filter(reorder_point__gt=0)
        .values_list("slug", "reorder_point", "title")
    }
    rows = (
        INVENTORY.live_rows()
        .filter(product__in=list(products))
        .annotate(left=F("on_hand") - F("held"))
        .order_by("left", "product")
    )
    found = []
    for row in rows:
        point, title = products[row.product]
        if row.available < point:
            found.append({"product": row.product, "title": title, "available": row.available, "reorder_point": point})
    return found[:limit]


def purchase_orders_open(*, limit: int = 10) -> list[PurchaseOrder]:
    return list(
        PurchaseOrder.objects.filter(status__in=[PurchaseOrder.Status.DRAFT, PurchaseOrder.Status.CONFIRMED])
        .select_related("product", "supplier")
        .order_by("-created_at")[:limit]
    )


@dataclass(frozen=True)
class ShelfStock:
    """What a storefront page shows of a product's stock: the units an ordinary shopper may
    buy and, while the view has the product's sale open, the units left in that sale (None
    outside a sale) and that sale's window (no start: on sale from its opening; no end: until
    it is closed)."""

    available: int
    sale_remaining: int | None = None
    sale_starts_at: datetime | None = None
    sale_ends_at: datetime | None = None

    def sale_window(self, now: datetime | None = None) -> str:
        """ "open", "not_started" or "ended", as the sale's own page tells it
        (`SaleAllocation.window_state`): a sale opened ahead of its start is not taking
        orders yet, and one past its end is closed by the beat moments later."""
        now = now or timezone.now()
        if self.sale_starts_at and now < self.sale_starts_at:
            return "not_started"
        if self.sale_ends_at and now >= self.sale_ends_at:
            return "ended"
        return "open"


def _aware(value: datetime | None) -> datetime | None:
    # SQLite gives a plain SQL read's datetimes without their zone: they are stored in UTC.
    if value is not None and timezone.is_naive(value):
        return timezone.make_aware(value, UTC)
    return value


def products_shelf_stock(product_ids: Iterable[int]) -> dict[int, ShelfStock]:
    """Each product's stock for the storefront's badges, cards and buy boxes, by primary key,
    in one read: the inventory view's figures, or the catalogue's own for a product the view
    has not seen yet (and then no sale). A sale's window is its allocation's, read with them:
    the merchant may move it while the sale is open, which the log does not tell."""
    ids = sorted(set(product_ids))
    if not ids:
        return {}
    quote = connection.ops.quote_name
    product, level, generation, sale = (
        quote(m._meta.db_table) for m in (Product, InventoryLevel, Generation, SaleAllocation)
    )
    # Plain SQL, as the page cache reads stock: the ORM's building of it costs more than the query.
    sql = (
        f"SELECT p.id, COALESCE(i.on_hand - i.held, p.stock - p.held), "  # noqa: S608 - placeholders only
        f"CASE WHEN i.sale_state = %s THEN i.allocated - i.reserved - i.sold END, s.starts_at, s.ends_at "
        f"FROM {product} p "
        f"LEFT JOIN {level} i ON i.product = p.slug AND i.generation = "
        f"(SELECT live FROM {generation} WHERE {quote('view')} = %s) "
        f"LEFT JOIN {sale} s ON s.product_id = p.id "
        f"WHERE p.id IN ({', '.join(['%s'] * len(ids))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [SALE_OPEN, INVENTORY.name, *ids])
        return {
            pk: ShelfStock(available=max(available, 0))
            if left is None
            else ShelfStock(
                available=max(available, 0),
                sale_remaining=max(left, 0),
                sale_starts_at=_aware(starts_at),
                sale_ends_at=_aware(ends_at),
            )
            for pk, available, left, starts_at, ends_at in cursor.fetchall()
        }


def products_available(product_ids: Iterable[int]) -> dict[int, int]:
    """Available units of each product, by primary key, in one read (`products_shelf_stock`)."""
    return {pk: stock.available for pk, stock in products_shelf_stock(product_ids).items()}
