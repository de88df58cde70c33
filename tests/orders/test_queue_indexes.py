"""The live queue view and the sale dashboard count the orders that became final in each recent
minute, every few seconds during a sale: each count reads an index on `completed_at`, not every
order of every sale. The table holds a few thousand final orders spread over days, its
statistics taken, and each query the figures really send is planned as PostgreSQL would run it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders import selectors
from orders.models import HotOrder, OrderStage, OrderStatus
from readmodels import dashboard

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

ORDERS = 4000


@pytest.fixture
def final_orders(product):
    now = timezone.now()
    HotOrder.objects.bulk_create(
        HotOrder(
            number=f"T{n:06d}",
            token=f"token-{n}",
            idempotency_key=f"key-{n}",
            product=product,
            quantity=1,
            unit_price_cents=1000,
            customer_name="Buyer",
            customer_email=f"buyer{n}@example.com",
            card_last4="4242",
            status=OrderStatus.COMPLETE if n % 10 else OrderStatus.FAILED,
            stage=OrderStage.SENT_TO_FULFILMENT if n % 10 else OrderStage.CARD_DECLINED,
            reserved_until=now,
            created_at=now - timedelta(minutes=n + 1),
            completed_at=now - timedelta(minutes=n),
        )
        for n in range(ORDERS)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_hotorder")


def completed_plans(figures) -> list[str]:
    """The plans of the queries `figures()` sends that read orders by `completed_at`."""
    with CaptureQueriesContext(connection) as sent:
        figures()
    found = []
    with connection.cursor() as cursor:
        for query in sent.captured_queries:
            if '"completed_at"' not in query["sql"]:
                continue
            cursor.execute("EXPLAIN " + query["sql"])
            found.append("\n".join(row[0] for row in cursor.fetchall()))
    return found


def test_the_live_views_minutes_read_the_completed_index(final_orders):
    plans = completed_plans(selectors.queue_stats)

    assert len(plans) == 10
    assert all("hot_order_completed" in plan and "Seq Scan" not in plan for plan in plans), plans[0]


def test_the_dashboards_last_minute_reads_the_completed_index(final_orders):
    (plan,) = completed_plans(dashboard._queue)

    assert "hot_order_completed" in plan and "Seq Scan" not in plan, plan
