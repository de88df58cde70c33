"""Template helpers of the storefront: money, the header's categories and basket count."""

from __future__ import annotations

from django import template

from shop import navigation, selectors
from shop.models import LOW_STOCK

register = template.Library()


@register.filter
def money(cents) -> str:
    """1499 → "$14.99"."""
    try:
        cents = int(cents)
    except (TypeError, ValueError):
        return ""
    return f"${cents // 100:,}.{cents % 100:02d}"


@register.simple_tag
def nav_categories():
    return navigation.nav_categories()


@register.simple_tag(takes_context=True)
def basket_count(context) -> int:
    request = context.get("request")
    if request is None:
        return 0
    return selectors.basket_count(basket=selectors.basket_get_for_request(request))


@register.inclusion_tag("shop/_stock_badge.html")
def stock_badge(product):
    return {"state": product.stock_state, "stock": product.available, "low_stock": LOW_STOCK}
