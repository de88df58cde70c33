"""The hot path's change lists fit a 1280 px screen beside the admin's menu: short headers, one
sale-window column, compact dates, and the legacy number kept in the list. A sale's state says
when an open sale is outside its window."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import DeadLetter, HotOrder, SaleAllocation, SaleState
from shop.models import Product

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


def state_cell(content: str) -> str:
    return re.search(r'<td class="field-sale_state">(.*?)</td>', content, re.S).group(1)


def test_an_open_sale_before_its_start_says_when_it_starts_in_the_list_and_on_its_page(admin_client, product):
    starts = timezone.now() + timedelta(hours=1)
    allocation = SaleAllocation.objects.create(product=product, allocated=5, state=SaleState.OPEN, starts_at=starts)
    local = timezone.localtime(starts)
    when = local.strftime("%H:%M") if local.date() == timezone.localtime().date() else local.strftime("%-d %b %H:%M")
    expected = f'open<br><span class="nowrap">starts {when}</span>'

    assert state_cell(admin_client.get("/admin/orders/saleallocation/").content.decode()) == expected
    page = admin_client.get(f"/admin/orders/saleallocation/{allocation.pk}/change/").content.decode()
    assert re.search(r'<label>State:</label>\s*<div class="readonly">' + re.escape(expected) + "</div>", page)
    assert SaleAllocation.objects.get().state == SaleState.OPEN  # what the merchant sees, not the model's state


def test_an_open_sale_past_its_end_says_it_ended_and_one_in_its_window_just_open(admin_client, product):
    now = timezone.now()
    ended = now - timedelta(minutes=1)
    SaleAllocation.objects.create(product=product, allocated=5, state=SaleState.OPEN, ends_at=ended)
    content = admin_client.get("/admin/orders/saleallocation/").content.decode()
    assert state_cell(content) == 'open<br><span class="nowrap">ended</span>'

    SaleAllocation.objects.update(ends_at=now + timedelta(hours=1), starts_at=now - timedelta(hours=1))
    assert state_cell(admin_client.get("/admin/orders/saleallocation/").content.decode()) == "open"


@pytest.mark.parametrize("state", [SaleState.DRAFT, SaleState.CLOSING, SaleState.CLOSED])
def test_a_sale_not_open_shows_its_state_whatever_its_window(admin_client, product, state):
    starts = timezone.now() + timedelta(hours=1)
    SaleAllocation.objects.create(product=product, allocated=5, state=state, starts_at=starts)
    assert state_cell(admin_client.get("/admin/orders/saleallocation/").content.decode()) == state.label


def allocation_flags(client) -> tuple[list[tuple[str, str]], int]:
    """Each row's allocated units and its flag, if any; and the queries the list took."""
    with CaptureQueriesContext(connection) as queries:
        content = client.get("/admin/orders/saleallocation/").content.decode()
    cell = r'<td class="field-allocated_units">(\d+)(?:<br><span class="sale-over-stock"[^>]*>([^<]*))?'
    return re.findall(cell, content), len(queries)


def test_a_draft_asking_more_than_in_stock_is_flagged_in_the_list_and_no_other_sale(admin_client, product, category):
    SaleAllocation.objects.create(product=product, allocated=120)  # 100 in stock
    rows, one_row = allocation_flags(admin_client)
    assert rows == [("120", "more than in stock")]

    within = Product.objects.create(category=category, title="Bass Rod", slug="bass-rod", price_cents=4999, stock=10)
    SaleAllocation.objects.create(product=within, allocated=10)
    # A closed sale keeps what it sold as its allocation: nothing to flag.
    closed = Product.objects.create(category=category, title="Carp Rod", slug="carp-rod", price_cents=4999, stock=2)
    SaleAllocation.objects.create(product=closed, allocated=8, sold=8, state=SaleState.CLOSED)
    held = Product.objects.create(category=category, title="Pike Rod", slug="pike-rod", price_cents=4999, stock=10)
    Product.objects.filter(pk=held.pk).update(held=4)
    SaleAllocation.objects.create(product=held, allocated=7)  # 10 on hand, 6 of them available

    rows, queries = allocation_flags(admin_client)
    # By product title: Bass, Carp, Muskie, Pike.
    assert rows == [("10", ""), ("8", ""), ("120", "more than in stock"), ("7", "more than in stock")]
    assert queries == one_row  # each row's stock comes with the rows, not a query each
