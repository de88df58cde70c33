"""The benchmark's `db_accept_tps` runs ACCEPT_SQL through pgbench as one line of SQL: its
comments are cut out, never a literal that holds "--" (a sealed card's Fernet token may)."""

from __future__ import annotations

import pytest
from django.db import connection

import orders.acceptance
from bench.speed import accept_script
from orders.models import HotOrder

pytestmark = pytest.mark.django_db


def test_the_script_keeps_a_literal_with_dashes_whole_and_runs(allocation, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("pgbench's statement is PostgreSQL's")
    real = orders.acceptance.order_draft

    def draft(**kwargs):
        order = real(**kwargs)
        order.card_sealed = "gAAAA--sealed--token"
        return order

    monkeypatch.setattr(orders.acceptance, "order_draft", draft)
    for without_event in (False, True):
        script = accept_script(product_slug=allocation.product.slug, without_event=without_event)
        assert "'gAAAA--sealed--token'" in script and "\n" not in script.rstrip("\n")
        with connection.cursor() as cursor:
            cursor.execute(script.strip().rstrip(";"))
    assert HotOrder.objects.filter(card_sealed="gAAAA--sealed--token").count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_queue_is_emptied_of_one_products_orders_only(allocation):
    from bench.speed import queue_depth, queue_empty
    from orders.models import OrderStageEvent
    from shop.models import Product

    if connection.vendor != "postgresql":
        pytest.skip("the benchmark's database is PostgreSQL")
    script = accept_script(product_slug=allocation.product.slug)
    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute(script.strip().rstrip(";"))
    other = Product.objects.create(category=allocation.product.category, title="Reel", slug="reel", price_cents=1)
    assert queue_depth() == 3

    assert queue_empty(product_id=other.pk) == 0
    assert queue_depth() == 3

    assert queue_empty(product_id=allocation.product_id) == 3
    assert queue_depth() == 0
    assert not HotOrder.objects.exists() and not OrderStageEvent.objects.exists()
