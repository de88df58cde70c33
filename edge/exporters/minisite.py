"""The hot product's buy-now page rendered to static files for the S3 mini-site."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string


def hot_product(slug: str | None = None):
    from shop.models import Product

    return Product.objects.select_related("category").filter(slug=slug or settings.EDGE_HOT_PRODUCT).first()


def render_minisite(product=None, *, api_url: str | None = None) -> dict[str, bytes]:
    """S3 keys and their bodies: `<category>/<product>/index.html` under `shop/`."""
    product = product or hot_product()
    if product is None:
        return {}
    prefix = f"shop/{product.category.slug}/{product.slug}/"
    api = settings.EDGE_HOTPATH_API_URL if api_url is None else api_url
    html = render_to_string(
        "edge/minisite.html",
        {"product": product, "orders_url": f"{api}/{prefix}orders", "price": f"{product.price_cents / 100:.2f}"},
    )
    return {prefix + "index.html": html.encode()}
