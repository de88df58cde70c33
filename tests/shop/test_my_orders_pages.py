"""My orders of a customer with hundreds of orders: a page at a time, newest first, the
account's own orders read only as far as the page reaches, and as many queries on the last
page of a long history as on the first of a short one."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from shop.models import PlacedOrder
from shop.views import ORDERS_PAGE_SIZE

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders_of(customer):
    now = timezone.now()

    def make(count: int) -> None:
        PlacedOrder.objects.filter(customer=customer).delete()
        PlacedOrder.objects.bulk_create(
            PlacedOrder(
                number=f"FS-{n:06d}",
                legacy_id=n + 1,
                reference=f"ref-{n}",
                customer=customer,
                email="angler@example.com",
                name="Ada Angler",
                total_cents=4999,
                processing_ms=42,
                placed_at=now - timedelta(minutes=n),
            )
            for n in range(count)
        )

    return make


def shown(client: Client, path: str = "/account/orders/") -> list[str]:
    return re.findall(r'<tr data-order="([^"]+)">', client.get(path).content.decode())


def test_my_orders_shows_a_page_of_the_newest_orders_with_a_link_to_older_ones(customer, orders_of):
    orders_of(2 * ORDERS_PAGE_SIZE + 10)
    client = Client()
    client.force_login(customer)

    first = client.get("/account/orders/").content.decode()

    assert shown(client) == [f"FS-{n:06d}" for n in range(ORDERS_PAGE_SIZE)]
    assert 'href="?page=2" rel="next"' in first and "Page 1 of 3" in first
    assert shown(client, "/account/orders/?page=2")[0] == f"FS-{ORDERS_PAGE_SIZE:06d}"
    oldest = range(2 * ORDERS_PAGE_SIZE, 2 * ORDERS_PAGE_SIZE + 10)
    assert shown(client, "/account/orders/?page=3") == [f"FS-{n:06d}" for n in oldest]
    assert shown(client, "/account/orders/?page=99") == shown(client, "/account/orders/?page=3")
    assert shown(client, "/account/orders/?page=x") == shown(client)


def test_my_orders_sends_as_many_queries_however_long_the_history(customer, orders_of):
    client = Client()
    client.force_login(customer)
    client.get("/account/orders/")
    sent = []
    for count, page in ((3, 1), (6 * ORDERS_PAGE_SIZE, 6)):
        orders_of(count)
        with CaptureQueriesContext(connection) as queries:
            client.get(f"/account/orders/?page={page}")
        sent.append(len(queries))
        read = [q["sql"] for q in queries.captured_queries if 'FROM "shop_placedorder"' in q["sql"]]
        assert all("LIMIT" in sql or "COUNT(" in sql for sql in read), read

    assert sent[0] == sent[1]
