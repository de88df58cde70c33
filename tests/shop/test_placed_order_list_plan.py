"""The admin's list of placed orders reads them newest first through an index, not by sorting
every order the shop ever placed: the table holds a few thousand, its statistics taken, and the
queries the list really sends are planned as PostgreSQL would run them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from shop.models import PlacedOrder

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

ORDERS = 4000


@pytest.fixture
def placed_orders(db):
    now = timezone.now()
    PlacedOrder.objects.bulk_create(
        PlacedOrder(
            number=f"S{n:06d}",
            legacy_id=n + 1,
            reference=f"ref-{n}",
            email=f"buyer{n}@example.com",
            name="Buyer",
            total_cents=1000,
            processing_ms=1,
            placed_at=now - timedelta(minutes=n),
        )
        for n in range(ORDERS)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE shop_placedorder")


def test_the_placed_orders_list_reads_the_newest_through_the_placed_index(admin_client, placed_orders):
    with CaptureQueriesContext(connection) as sent:
        response = admin_client.get("/admin/shop/placedorder/")
    assert response.status_code == 200
    newest = [query["sql"] for query in sent.captured_queries if '"shop_placedorder"."placed_at" DESC' in query["sql"]]
    assert newest
    with connection.cursor() as cursor:
        for sql in newest:
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "placed_order_placed" in plan and "Seq Scan" not in plan, plan
