"""The hot orders' and dead letters' lists filter by product: they offer the products that have
such rows (a sale's few), not every product of a catalogue of thousands."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import DeadLetter, HotOrder
from shop.models import Product

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def monolith_urls(settings):
    settings.ROOT_URLCONF = "config.urls_monolith"  # the admin's; the folder's default is the hot path's


@pytest.fixture
def orders_of_two_products(product, category) -> list[HotOrder]:
    """An order of each of two products, in a catalogue of 32."""
    lures = Product.objects.bulk_create(
        Product(category=category, title=f"Lure {n}", slug=f"lure-{n}", price_cents=699, stock=5) for n in range(31)
    )
    return [
        HotOrder.objects.create(
            number=f"T00004{n}",
            token=f"{n}" * 40,
            idempotency_key=f"k-4{n}",
            fingerprint="f",
            product=ordered,
            quantity=1,
            unit_price_cents=14999,
            customer_name="Ada Angler",
            customer_email="ada@example.com",
            card_last4="4242",
            reserved_until=timezone.now() + timedelta(minutes=10),
        )
        for n, ordered in enumerate([product, lures[7]])
    ]


def offered(content: str, lookup: str) -> set[str]:
    return set(re.findall(rf"\?{lookup}=(\d+)", content))


def test_the_hot_orders_product_filter_offers_only_products_with_hot_orders(admin_client, orders_of_two_products):
    content = admin_client.get("/admin/orders/hotorder/").content.decode()

    assert offered(content, "product__id__exact") == {str(order.product_id) for order in orders_of_two_products}


def test_the_dead_letters_product_filter_offers_only_products_with_dead_letters(admin_client, orders_of_two_products):
    for order in orders_of_two_products:
        DeadLetter.objects.create(order=order, error="legacy API answered 503", attempts=9)

    content = admin_client.get("/admin/orders/deadletter/").content.decode()

    expected = {str(order.product_id) for order in orders_of_two_products}
    assert offered(content, "order__product__id__exact") == expected


def test_the_filtered_list_shows_that_products_orders(admin_client, orders_of_two_products):
    first, second = orders_of_two_products

    content = admin_client.get(f"/admin/orders/hotorder/?product__id__exact={second.product_id}").content.decode()

    assert second.number in content and first.number not in content
