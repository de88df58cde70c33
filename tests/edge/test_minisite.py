"""The S3 mini-site's buy-now page: the hot path's own sale page, in the shop's header, footer
and look, whose form posts to the hot path's API (it was a bare page of its own: a green
"Sweet — buy it now!" button, no limit per order, and the API's JSON shown to the buyer)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import override_settings

from edge.exporters.minisite import render_minisite
from orders.models import SaleAllocation
from orders.selectors import product_memo_forget
from shop.models import Category, Product

pytestmark = pytest.mark.django_db

KEY = "shop/rods/muskie-casting-rod/index.html"


@pytest.fixture(autouse=True)
def clean_cache():
    """The sale's page reads the product through the hot path's cache, which outlives the
    database flush between tests."""
    cache.clear()
    product_memo_forget()
    yield
    cache.clear()
    product_memo_forget()


@pytest.fixture
def rod() -> Product:
    rods = Category.objects.create(name="Rods", slug="rods")
    return Product.objects.create(
        category=rods, title="Muskie Casting Rod", slug="muskie-casting-rod", price_cents=149999, stock=30
    )


@override_settings(EDGE_HOTPATH_API_URL="https://api.example.com")
def test_an_open_sale_s_page_is_the_shop_s_sale_page_posting_to_the_hot_path(rod):
    SaleAllocation.objects.create(product=rod, is_hot=True, allocated=20, per_order_limit=2)

    html = render_minisite()[KEY].decode()

    assert '<header class="site-header">' in html and '<footer class="site-footer">' in html
    assert "shop/shop.css" in html and "shop/sale.css" in html and "shop/sale.js" in html
    assert "⚡ Flash sale — limited stock, 2 per order" in html
    assert 'data-orders-url="https://api.example.com/shop/rods/muskie-casting-rod/orders"' in html
    assert 'data-stock-url="https://api.example.com/shop/rods/muskie-casting-rod/stock"' in html
    assert '<option value="2">2</option>' in html and '<option value="3">' not in html
    assert "Buy now — $1,499.99</button>" in html
    assert "/accounts/login/?next=/shop/rods/muskie-casting-rod/" in html
    assert "JSON.stringify" not in html and "Sweet" not in html
    # Its figures and price are the export's: its script asks for the live ones at once, where
    # the hot path's own page, rendered with them, waits for its first 5 s like every buyer's.
    assert "data-exported" in html
    from django.template.loader import render_to_string

    from orders.selectors import hot_product_get
    from orders.views import buy_now_context

    rendered = render_to_string(
        "orders/buy_now.html", buy_now_context(hot_product_get(category="rods", product=rod.slug))
    )
    assert 'data-stock-url="/shop/rods/muskie-casting-rod/stock"' in rendered and "data-exported" not in rendered


def test_a_product_with_no_sale_gets_the_shop_s_page_with_no_form_to_order(rod):
    html = render_minisite()[KEY].decode()

    assert '<header class="site-header">' in html and "$1,499.99" in html
    assert "This sale has ended and takes no more orders." in html
    assert " disabled>Not on sale</button>" in html
