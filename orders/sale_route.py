"""A sale's route: the edge route that sends its product's pages to the hot path, switched on or
added when the sale opens (`sale open --route`, the admin's sale form). By the edge's own
command, as this app does not import the edge. Closing a sale switches its routes off wherever
it is closed (`orders.sales.sale_closed`)."""

from __future__ import annotations

import io

from django.core.management import CommandError, call_command

from shop.models import Product

# What changing the edge's routes asks of a merchant in the admin.
ROUTE_PERMISSIONS = ("edge.add_route", "edge.change_route")


class SaleRouteRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def sale_route_name(product: Product) -> str:
    return f"{product.slug}-sale"


def sale_route_pattern(product: Product) -> str:
    # The product's address as it is now: the route may have been made when the product was in
    # another category.
    return f"/shop/{product.category.slug}/{product.slug}/*"


def sale_route_on(product: Product, *, actor: str, stdout=None) -> str:
    """Switches the sale's route on (its pattern set to the product's address), or adds it; its
    name. Raises SaleRouteRefused with the edge's reason."""
    name, pattern = sale_route_name(product), sale_route_pattern(product)
    out = stdout or io.StringIO()
    try:
        call_command("edge_route", "enable", name, "--pattern", pattern, actor=actor, stdout=out)
        return name
    except CommandError as exc:
        if not str(exc).startswith("No route named"):
            raise SaleRouteRefused(f"route {name}: {exc}") from None
    try:
        call_command("edge_route", "add", name, pattern, origin="hotpath", enable=True, actor=actor, stdout=out)
    except CommandError as exc:
        raise SaleRouteRefused(f"route {name} was not added: {exc}") from None
    return name
