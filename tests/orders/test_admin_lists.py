"""The hot path's change lists fit a 1280 px screen beside the admin's menu: short headers, one
sale-window column, compact dates, and the legacy number kept in the list."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import DeadLetter, HotOrder, SaleAllocation

COLUMN = r'<th scope="col" class="[^"]*column-(\w+)'


@pytest.fixture(autouse=True)
def monolith_urls(settings):
    settings.ROOT_URLCONF = "config.urls_monolith"  # the admin's; the folder's default is the hot path's


@pytest.fixture
def sale_with_an_order(product):
    now = timezone.now()
    SaleAllocation.objects.create(
        product=product, allocated=5, per_order_limit=2, starts_at=now, ends_at=now + timedelta(days=1)
    )
    return HotOrder.objects.create(
        number="T000042",
        token="t" * 40,
        idempotency_key="k-42",
        fingerprint="f",
        product=product,
        quantity=1,
        unit_price_cents=14999,
        customer_name="Ada Angler",
        customer_email="a.very.long.address.for.a.shopper@example.com",
        card_last4="4242",
        legacy_number="L00000042",
        reserved_until=timezone.now() + timedelta(minutes=10),
    )


def test_hot_order_list_keeps_the_legacy_number_and_a_short_date(admin_client, sale_with_an_order):
    content = admin_client.get("/admin/orders/hotorder/").content.decode()
    header = re.findall(COLUMN, content)

    assert header == ["number", "product", "qty", "stage", "email", "card", "tries", "legacy_no", "created"]
    assert "L00000042" in content
    short = timezone.localtime(sale_with_an_order.created_at).strftime("%-d %b %H:%M")
    assert short in content
    assert "a.<wbr>very.<wbr>long.<wbr>address.<wbr>for.<wbr>a.<wbr>shopper<wbr>@example.<wbr>com" in content


def test_sale_allocation_list_shows_its_window_in_one_short_column(admin_client, sale_with_an_order):
    allocation = SaleAllocation.objects.get()
    content = admin_client.get("/admin/orders/saleallocation/").content.decode()
    header = re.findall(COLUMN, content)

    assert header[-1] == "window" and "starts_at" not in header and "ends_at" not in header
    start = timezone.localtime(allocation.starts_at).strftime("%-d %b %H:%M")
    end = timezone.localtime(allocation.ends_at).strftime("%-d %b %H:%M")
    assert f"{start}<br>– {end}" in content


def test_dead_letter_list_dates_are_short(admin_client, sale_with_an_order):
    letter = DeadLetter.objects.create(order=sale_with_an_order, error="legacy API answered 503", attempts=9)
    content = admin_client.get("/admin/orders/deadletter/").content.decode()

    assert re.findall(COLUMN, content) == [
        "order",
        "product",
        "error_short",
        "attempts",
        "created",
        "redriven",
        "redriven_by",
    ]
    assert timezone.localtime(letter.created_at).strftime("%-d %b %H:%M") in content
