"""The benchmark's two sales, set up as a merchant would: the hot product the stampede buys,
and a second hot product with a sale too large to sell out, for the speed figures."""

from __future__ import annotations

from bench.stack import Stack

HOT_CATEGORY, HOT_PRODUCT = "rods", "muskie-casting-rod"
CEILING_PRODUCT = "tourney-casting-rod"  # a second hot product, for the acceptance ceiling
CEILING_ALLOCATION = 1_000_000


def seed(stack: Stack, hot_allocation: int) -> None:
    """The merchant's side before the servers start: stock for the sales and the routes, as the
    admin would set them."""
    from edge.models import Origin
    from shop.models import Product

    for slug, allocation in ((HOT_PRODUCT, hot_allocation), (CEILING_PRODUCT, CEILING_ALLOCATION)):
        product = Product.objects.get(slug=slug)
        Product.objects.filter(pk=product.pk).update(stock=max(product.stock, allocation + 1000), is_active=True)
    # Ordinary shoppers and the calibration buy these through the monolith.
    Product.objects.filter(slug__in=["spinning-reel", "baitcasting-reel"]).update(stock=1_000_000)
    for name, port in (("monolith", "monolith"), ("hotpath", "hotpath"), ("legacy-api", "legacy")):
        Origin.objects.filter(name=name).update(domain="127.0.0.1", port=stack.ports[port], protocol="http")
    for name, slug in (("muskie-sale", HOT_PRODUCT), ("tourney-sale", CEILING_PRODUCT)):
        stack.manage("edge_route", "add", name, f"/shop/rods/{slug}/*", "--origin", "hotpath", "--enable", capture=True)


def sales_open(stack: Stack, hot_allocation: int) -> None:
    """Opens both sales as the merchant does, once the legacy API is up: each allocation is
    held in the stock of record first, and the workers place orders against that hold."""
    for slug, units in ((HOT_PRODUCT, hot_allocation), (CEILING_PRODUCT, CEILING_ALLOCATION)):
        stack.manage("sale", "open", slug, "--units", str(units), "--per-order", "2", capture=True)


def sale_reopen(stack: Stack, slug: str, units: int) -> None:
    """Closes the product's sale (sold out and drained: nothing goes back) and opens a fresh
    one of `units`, held anew in the stock of record, as a merchant running the next sale does:
    closing switched its route off, so the route is switched on again with it."""
    stack.manage("sale", "close", slug, capture=True)
    stack.manage("sale", "open", slug, "--units", str(units), "--per-order", "2", capture=True)
    route = {HOT_PRODUCT: "muskie-sale", CEILING_PRODUCT: "tourney-sale"}[slug]
    stack.manage("edge_route", "enable", route, capture=True)


def product_id(slug: str) -> int:
    from shop.models import Product

    return Product.objects.values_list("pk", flat=True).get(slug=slug)


def stack_with_sales(stack: Stack, hot_allocation: int) -> None:
    """A fresh stack with both sales open and every server started (a measurement of its own
    outside the stampede); the caller stops it (`stack.stop_all()`)."""
    stack.prepare()
    stack.django_setup()
    seed(stack, hot_allocation)
    stack.start_app_servers()
    sales_open(stack, hot_allocation)
