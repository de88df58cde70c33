"""Sales per product and minute, and the tallies per supplier and per category (hello-retail's
merchant leaderboard), both folded from the orders the stock of record placed
(legacy.orders ORDER/RECORD/PLACED): whichever channel took it, an order counts once, when it
is placed. An order drawn from a sale's hold is the hot path's ("sale"), any other the
storefront's."""

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
        for product, (units, revenue) in _lines(event).items():
            key = {"product": product, "minute": minute, "channel": channel}
            self.add(generation, key, orders=1, units=units, revenue_cents=revenue)


class TalliesView(Projection):
    """Sales per supplier and per category. A product's supplier and category are looked up
    when its order is folded in: moving a product to another supplier moves later sales only
    (a rebuild would count the earlier ones under the new supplier too)."""

    name = "tallies"
    model = Tally
    keys = ("kind", "key")
    figures = ("orders", "units", "revenue_cents")

    def wants(self, event: Event) -> bool:
        return _placed(event)

    def apply(self, event: Event, generation: int) -> None:
        if not _placed(event):
            return
        lines = _lines(event)
        owners = {
            p.slug: p
            for p in Product.objects.filter(slug__in=list(lines))
            .select_related("supplier", "category")
            .only("slug", "supplier__name", "category__slug")
        }
        totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for product, (units, revenue) in lines.items():
            owner = owners.get(product)
            supplier = owner.supplier.name if owner and owner.supplier else UNKNOWN
            category = owner.category.slug if owner else UNKNOWN
            for kind, key in ((Tally.Kind.SUPPLIER, supplier), (Tally.Kind.CATEGORY, category)):
                totals[(kind, key)][0] += units
                totals[(kind, key)][1] += revenue
        for (kind, key), (units, revenue) in totals.items():
            self.add(generation, {"kind": kind, "key": key}, orders=1, units=units, revenue_cents=revenue)


SALES_PER_MINUTE = SalesPerMinuteView()
TALLIES = TalliesView()
sales_per_minute_handle = SALES_PER_MINUTE.consumer()
tallies_handle = TALLIES.consumer()
