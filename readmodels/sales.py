"""Sales per product and minute, and the tallies per supplier and per category (hello-retail's
merchant leaderboard), both folded from the orders the stock of record placed
(legacy.orders ORDER/RECORD/PLACED): whichever channel took it, an order counts once, when it
is placed. An order drawn from a sale's hold is the hot path's ("sale"), any other the
storefront's. The tallies take each line's supplier and category from the event, as they were
when the order was placed, so a rebuild from the log equals the live view; only events written
before lines named them look the product up in the catalogue as it is now."""

from __future__ import annotations

from collections import defaultdict

from events.models import Event
from readmodels.models import SalesMinute, Tally
from readmodels.projections import Projection
from shop.models import Product

ORDERS_SOURCE = "legacy.orders"
SALE, STOREFRONT = "sale", "storefront"
# A product no longer in the catalogue, or without a supplier, is tallied under this key.
UNKNOWN = "(none)"


def _placed(event: Event) -> bool:
    return event.source == ORDERS_SOURCE and event.type == "ORDER" and event.status == "PLACED"


def _lines(event: Event) -> dict[str, tuple[int, int]]:
    """Units and revenue of each product of a placed order."""
    lines: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in event.data.get("lines") or []:
        units = int(line["quantity"])
        lines[line["product"]][0] += units
        lines[line["product"]][1] += units * int(line.get("unit_price_cents") or 0)
    return {product: (units, revenue) for product, (units, revenue) in lines.items()}


class SalesPerMinuteView(Projection):
    name = "sales_per_minute"
    model = SalesMinute
    keys = ("product", "minute", "channel")
    figures = ("orders", "units", "revenue_cents")

    def wants(self, event: Event) -> bool:
        return _placed(event)

    def apply(self, event: Event, generation: int) -> None:
        if not _placed(event):
            return
        minute = event.time.replace(second=0, microsecond=0)
        channel = SALE if event.data.get("hold") else STOREFRONT
        lines = _lines(event)
        # The order counted once, under its first product by slug (the same in a rebuild): the
        # rows are added up across products, and an order of two products counted two orders.
        counted = min(lines, default=None)
        for product, (units, revenue) in lines.items():
            key = {"product": product, "minute": minute, "channel": channel}
            self.add(generation, key, orders=int(product == counted), units=units, revenue_cents=revenue)


def _owners_now(products: list[str]) -> dict[str, tuple[str, str]]:
    """Each product's supplier and category as the catalogue has them now."""
    found = {
        p.slug: (p.supplier.name if p.supplier else UNKNOWN, p.category.slug)
        for p in Product.objects.filter(slug__in=products)
        .select_related("supplier", "category")
        .only("slug", "supplier__name", "category__slug")
    }
    return {product: found.get(product, (UNKNOWN, UNKNOWN)) for product in products}


def _owners(event: Event) -> dict[str, tuple[str, str]]:
    """Each product's supplier and category as the order's event names them: where the sale was
    made, whatever the merchant changed since. Events written before lines named them have only
    the catalogue's current answer, so only their sales move with a product that changes hands."""
    lines = event.data.get("lines") or []
    named = {
        line["product"]: (line["supplier"] or UNKNOWN, line["category"] or UNKNOWN)
        for line in lines
        if "supplier" in line and "category" in line
    }
    unnamed = [line["product"] for line in lines if line["product"] not in named]
    return (named | _owners_now(unnamed)) if unnamed else named


class TalliesView(Projection):
    """Sales per supplier and per category, each under the supplier and category its order's
    event names: moving a product to another supplier moves later sales only, in the live view
    and in a rebuild alike."""

    name = "tallies"
    model = Tally
    keys = ("kind", "key")
    figures = ("orders", "units", "revenue_cents")

    def wants(self, event: Event) -> bool:
        return _placed(event)

    def apply(self, event: Event, generation: int) -> None:
        if not _placed(event):
            return
        owners = _owners(event)
        totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for product, (units, revenue) in _lines(event).items():
            supplier, category = owners[product]
            for kind, key in ((Tally.Kind.SUPPLIER, supplier), (Tally.Kind.CATEGORY, category)):
                totals[(kind, key)][0] += units
                totals[(kind, key)][1] += revenue
        for (kind, key), (units, revenue) in totals.items():
            self.add(generation, {"kind": kind, "key": key}, orders=1, units=units, revenue_cents=revenue)


SALES_PER_MINUTE = SalesPerMinuteView()
TALLIES = TalliesView()
sales_per_minute_handle = SALES_PER_MINUTE.consumer()
tallies_handle = TALLIES.consumer()
