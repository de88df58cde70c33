"""A sale's route: the edge route that sends its product's pages to the hot path (and nowhere
else: an origin or a redirect it had is replaced), switched on or added when the sale opens
(`sale open --route`, the admin's sale form). By the edge's own command, as this app does not
import the edge. Closing a sale switches its routes off wherever it is closed
(`orders.sales.sale_closed`)."""

from __future__ import annotations

import io
from dataclasses import dataclass

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


@dataclass(frozen=True)
class SaleRouted:
    name: str
    # What the edge warns of the route as it now is (an earlier route that shadows it, a window
    # that has ended): it is on, but may not send every buyer to the sale.
    warnings: list[str]


def sale_route_on(product: Product, *, actor: str, stdout=None) -> SaleRouted:
    """Switches the sale's route on, to the hot path, at the product's address (a redirect it had
    dropped), or adds it. Raises SaleRouteRefused with the edge's reason."""
    name, pattern = sale_route_name(product), sale_route_pattern(product)
    out, err = stdout or io.StringIO(), io.StringIO()
    try:
        call_command(
            "edge_route",
            "enable",
            name,
            "--pattern",
            pattern,
            "--origin",
            "hotpath",
            actor=actor,
            stdout=out,
            stderr=err,
        )
    except CommandError as exc:
        if not str(exc).startswith("No route named"):
            raise SaleRouteRefused(f"route {name}: {exc}") from None
        try:
            call_command(
                "edge_route", "add", name, pattern, origin="hotpath", enable=True, actor=actor, stdout=out, stderr=err
            )
        except CommandError as exc:
            raise SaleRouteRefused(f"route {name} was not added: {exc}") from None
    warnings = [line.removeprefix("Warning: ") for line in err.getvalue().splitlines() if line.strip()]
    return SaleRouted(name=name, warnings=warnings)
