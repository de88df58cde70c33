"""Template helpers of the storefront: money, the header's categories and basket count."""

from __future__ import annotations

from django import template

from readmodels.selectors import ShelfStock, products_shelf_stock
from shop import navigation, page_cache, selectors

register = template.Library()


@register.filter
def money(cents) -> str:
    """1499 → "$14.99"."""
    try:
        cents = int(cents)
    except (TypeError, ValueError):
        return ""
    return f"${cents // 100:,}.{cents % 100:02d}"


@register.simple_tag(takes_context=True)
def nav_categories(context):
    # A cached catalogue page brings the list it was rendered with (shop.page_cache).
    cached = context.get("nav_categories")
    return cached if cached is not None else navigation.nav_categories()


@register.simple_tag(takes_context=True)
def basket_count(context) -> int:
    request = context.get("request")
    if request is None:
        return 0
    return selectors.basket_count(basket=selectors.basket_get_for_request(request))


# The stock tags leave a hole where the stock goes when the content is rendered to be kept
# (`stock_holes` in the context, see shop.page_cache), and render it at once elsewhere.
@register.simple_tag(takes_context=True)
def stock_badge(context, product):
    if context.get("stock_holes"):
        return page_cache.hole("badge", product.pk)
    return page_cache.badge_html(product.available)


@register.simple_tag(takes_context=True)
def stock_card_class(context, product) -> str:
    """The product card's extra class: ` is-sold-out` when nothing is left."""
    if context.get("stock_holes"):
        return page_cache.hole("card", product.pk)
    return page_cache.card_class(_shelf_stock(product))


@register.simple_tag(takes_context=True)
def stock_card_badge(context, product):
    """The product card's badge: its stock, or "Flash sale" while it is on one."""
    if context.get("stock_holes"):
        return page_cache.hole("card_badge", product.pk)
    return page_cache.card_badge_html(_shelf_stock(product))


@register.simple_tag
def on_flash_sale(product) -> bool:
    """Whether the product's flash sale is open with units left: its page is then the sale's,
    where those units are sold, whatever the storefront has left of it for baskets."""
    stock = _shelf_stock(product)
    return bool(stock.sale_remaining) and stock.sale_window() == "open"


def _shelf_stock(product) -> ShelfStock:
    # Outside a kept page (none of the catalogue's pages): one read for the one product.
    return products_shelf_stock([product.pk]).get(product.pk) or ShelfStock(available=product.available)


@register.simple_tag(takes_context=True)
def stock_buy_box(context, product):
    if context.get("stock_holes"):
        return page_cache.hole("buy", product.pk)
    return page_cache.buy_box_html(context.get("request"), product_slug=product.slug, available=product.available)
