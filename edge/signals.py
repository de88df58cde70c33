"""What the edge does when a sale ends elsewhere: its product's pages stop going to the hot path."""

from __future__ import annotations

from edge import matcher
from edge.models import HOT_PATH_ORIGIN, Route
from edge.services import route_set_enabled
from orders.selectors import hot_path_product_ids
from shop.models import Product


def sale_routes_off(sender, *, product, **kwargs) -> list[str]:
    """Switches off every enabled route that sends the closed sale's product page, or its
    orders API or stock figures, to the hot path (audited as the sale's change), so the
    storefront sells the product again; whoever closed the sale (the `sale` command, the admin,
    the beat at the window's end). A route that also sends another product whose sale is open
    (`/shop/rods/*` for two sales) stays on, so that sale's rush stays off the storefront, and
    the merchant is told what that leaves. Returns a line for each route."""
    page = f"/shop/{product.category.slug}/{product.slug}/"
    routes = Route.objects.filter(enabled=True, origin__name=HOT_PATH_ORIGIN).order_by("position", "pk")
    open_sales = list(
        Product.objects.filter(pk__in=hot_path_product_ids() - {product.pk})
        .order_by("category__slug", "slug")
        .values_list("category__slug", "slug")
    )
    notes = []
    for route in routes:
        # The sale's own route too, made for an address the product has since left.
        covers = matcher.pattern_matches_product(route.pattern, product.category.slug, product.slug)
        if not covers and route.name != f"{product.slug}-sale":
            continue
        still_selling = [
            slug for category, slug in open_sales if matcher.pattern_matches_product(route.pattern, category, slug)
        ]
        if still_selling:
            ahead = (
                f"--position N --enable`, N below {route.position})"
                if route.position
                else f"--enable`, then move {route.name} after it on its page in the admin)"
            )
            notes.append(
                f"Route {route.name} left on: it also sends the open sale of {', '.join(still_selling)} to the "
                f"hot path. Until it is switched off, {page} shows its ended sale there; to sell {product.slug} "
                f"at the storefront now, add a route ahead of it (`manage.py edge_route add "
                f"{product.slug}-storefront '{page}*' --origin monolith {ahead}."
            )
            continue
        route_set_enabled(actor="sale", route=route, enabled=False)
        notes.append(f"Route {route.name} switched off: {page} goes to the storefront again.")
    return notes
