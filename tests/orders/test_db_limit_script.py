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


@pytest.mark.django_db(transaction=True)
def test_the_backlog_and_the_empty_queue_are_measured_in_pairs_side_by_side(allocation, monkeypatch):
    import bench.speed

    if connection.vendor != "postgresql":
        pytest.skip("the benchmark's database is PostgreSQL")
    assert bench.speed.pairs_order(3) == ["empty", "backlog", "backlog", "empty", "empty", "backlog"]
    script = accept_script(product_slug=allocation.product.slug)
    with connection.cursor() as cursor:
        for _ in range(2):  # what the phases before left queued
            cursor.execute(script.strip().rstrip(";"))
    seen = []

    def measure(edge, product_path, *, run, rate, seconds):
        # The acceptances a measurement makes stay queued until the next switch.
        with connection.cursor() as cursor:
            cursor.execute(script.strip().rstrip(";"))
        seen.append(("empty" if run.startswith("empty") else "backlog", bench.speed.queue_depth()))
        return {"empty": 10.0, "backlog": 15.0}[seen[-1][0]] + len(seen), {202: 5}

    monkeypatch.setattr(bench.speed, "_accept_p99_once", measure)
    empty, backlog = bench.speed.accept_p99_empty_and_backlog(
        "http://edge", "/p/", product_id=allocation.product_id, backlog_orders=50, rate=1, seconds=1, pairs=3
    )
    # Each backlog side sees the 50 put in beside the orders the empty side before it left
    # (and those of the backlog side just before it); each empty side none but its own.
    assert seen == [("empty", 1), ("backlog", 52), ("backlog", 53), ("empty", 1), ("empty", 2), ("backlog", 53)]
    assert empty["values"] == [11.0, 14.0, 15.0] and backlog["values"] == [17.0, 18.0, 21.0]
    assert (empty["median"], backlog["median"]) == (14.0, 18.0)
    assert backlog["pair_ratios"] == [round(17 / 11, 3), round(18 / 14, 3), round(21 / 15, 3)]
    # The queue as each side found it, before its own acceptances.
    assert empty["orders_taken_out_before"] == 2 and backlog["orders_queued"] == 52
    assert empty["statuses"] == {"202": 15} and backlog["statuses"] == {"202": 15}
    assert bench.speed.queue_empty(product_id=allocation.product_id) == 53
