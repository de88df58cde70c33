"""The hot product's buy-now page rendered to static files for the S3 mini-site: the hot path's
own sale page (orders/buy_now.html), in the shop's header, footer and look, whose script
refreshes the sale's stock and posts the order to the hot path's API."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string


def hot_product(slug: str | None = None):
    from shop.models import Product

    return Product.objects.select_related("category").filter(slug=slug or settings.EDGE_HOT_PRODUCT).first()


def _sale_data(product) -> dict:
    """The product as the sale's page needs it (orders.selectors): its sale's, or, with no sale
    set up for it, the product's own with none open."""
    from orders import selectors

    return selectors.hot_product_get(
        category=product.category.slug, product=product.slug
    ) or selectors.hot_product_data(product)


def render_minisite(product=None, *, api_url: str | None = None) -> dict[str, bytes]:
    """S3 keys and their bodies: `<category>/<product>/index.html` under `shop/`."""
    from orders.views import buy_now_context

    product = product or hot_product()
    if product is None:
        return {}
    prefix = f"shop/{product.category.slug}/{product.slug}/"
    api = settings.EDGE_HOTPATH_API_URL if api_url is None else api_url
    context = buy_now_context(_sale_data(product), api_url=api)
    html = render_to_string("orders/buy_now.html", {**context, "exported": True})
    return {prefix + "index.html": html.encode()}
