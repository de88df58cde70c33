"""Finding orders by a mailbox or by the legacy API's number reads an index, not every order: a
sale leaves hundreds of thousands of them, and My orders would scan them all on each visit.
The tables hold a few thousand orders of many mailboxes, their statistics taken, and each query
the finders really send is planned as PostgreSQL would run it: the plan names the index only
when the index serves that very expression."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.order_finders import SaleOrderFinder
from orders.models import HotOrder, OrderStatus
from shop.models import PlacedOrder
from shop.order_finders import GuestOrderFinder

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

ORDERS = 4000


@pytest.fixture
def many_orders(product):
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
            customer_email=f"buyer{n}@example{n % 50}.com",
            card_last4="4242",
            status=OrderStatus.COMPLETE,
            reserved_until=now,
            legacy_number=f"L{n:06d}",
        )
        for n in range(ORDERS)
    )
    PlacedOrder.objects.bulk_create(
        PlacedOrder(
            number=f"S{n:06d}",
            legacy_id=n + 1,
            reference=f"ref-{n}",
            email=f"guest{n}@example{n % 50}.com",
            name="Guest",
            total_cents=1000,
            processing_ms=1,
            placed_at=now - timedelta(seconds=n),
        )
        for n in range(ORDERS)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_hotorder")
        cursor.execute("ANALYZE shop_placedorder")


def plans(find) -> str:
    """The plans of the queries `find()` sends."""
    with CaptureQueriesContext(connection) as sent:
        find()
    with connection.cursor() as cursor:
        lines = []
        for query in sent.captured_queries:
            cursor.execute("EXPLAIN " + query["sql"])
            lines += [row[0] for row in cursor.fetchall()]
    return "\n".join(lines)


def test_a_mailboxs_sale_orders_are_read_through_the_folded_address_index(many_orders):
    plan = plans(lambda: SaleOrderFinder().for_email(email="Buyer7@Example7.com"))

    assert "hot_order_email_folded" in plan and "Seq Scan" not in plan


def test_a_mailboxs_guest_orders_are_read_through_the_folded_address_index(many_orders):
    plan = plans(lambda: GuestOrderFinder().for_email(email="Guest7@Example7.com"))

    assert "placed_order_email_folded" in plan and "Seq Scan" not in plan


def test_a_sale_order_named_by_its_legacy_number_is_read_through_its_index(many_orders):
    plan = plans(lambda: SaleOrderFinder().own_number(number="l000123"))

    assert "hot_order_legacy_number" in plan and "Seq Scan" not in plan
