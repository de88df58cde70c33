"""What the edge does when a sale ends elsewhere: its product's pages stop going to the hot path."""

from __future__ import annotations

from edge import matcher
from edge.models import HOT_PATH_ORIGIN, Route
from edge.services import route_set_enabled


def sale_routes_off(sender, *, product, **kwargs) -> list[str]:
    """Switches off every enabled route that sends the closed sale's product page, or its
    orders API or stock figures, to the hot path (audited as the sale's change), so the
    storefront sells the product again; whoever
    closed the sale (the `sale` command, the admin, the beat at the window's end). Returns a
    line for each route switched off."""
    page = f"/shop/{product.category.slug}/{product.slug}/"
    routes = Route.objects.filter(enabled=True, origin__name=HOT_PATH_ORIGIN).order_by("position", "pk")
    notes = []
    for route in routes:
        # The sale's own route too, made for an address the product has since left.
        covers = matcher.pattern_matches_product(route.pattern, product.category.slug, product.slug)
        if covers or route.name == f"{product.slug}-sale":
            route_set_enabled(actor="sale", route=route, enabled=False)
            notes.append(f"Route {route.name} switched off: {page} goes to the storefront again.")
    return notes
