"""A sale's page in a catalogue of thousands of products: its product is searched for when a
sale is added, and shown as the one it is on the sale's page, not picked from a list of every
product of the catalogue rendered into each page."""

from __future__ import annotations

import re

import pytest

from orders.models import SaleAllocation
from shop.models import Product

pytestmark = pytest.mark.django_db

CATALOGUE = 40


@pytest.fixture(autouse=True)
def monolith_urls(settings):
    settings.ROOT_URLCONF = "config.urls_monolith"  # the admin's; the folder's default is the hot path's


@pytest.fixture
def catalogue(product, category) -> Product:
    Product.objects.bulk_create(
        Product(category=category, title=f"Lure {n}", slug=f"lure-{n}", price_cents=699, stock=5)
        for n in range(CATALOGUE)
    )
    return product


def product_options(content: str) -> list[str]:
    select = re.search(r'<select name="product".*?</select>', content, re.S)
    assert select, "no product field"
    return re.findall(r'<option value="(\d+)"', select.group(0))


def test_a_sales_page_renders_its_product_alone(admin_client, catalogue):
    sale = SaleAllocation.objects.create(product=catalogue, allocated=5, per_order_limit=2)

    content = admin_client.get(f"/admin/orders/saleallocation/{sale.pk}/change/").content.decode()

    assert product_options(content) == [str(catalogue.pk)]


def test_adding_a_sale_searches_the_catalogue_for_its_product(admin_client, catalogue):
    content = admin_client.get("/admin/orders/saleallocation/add/").content.decode()
    found = admin_client.get(
        "/admin/autocomplete/",
        {"app_label": "orders", "model_name": "saleallocation", "field_name": "product", "term": "Lure 17"},
    ).json()

    assert product_options(content) == []
    assert [result["text"] for result in found["results"]] == ["Lure 17"]
