"""The acceptance designs the benchmark compares (bench.designs): each statement, run as pgbench
would run it, writes whole orders, holds the units where its design says, and sells no unit
beyond what it holds."""

from __future__ import annotations

import pytest
from django.db import connection

from bench import designs
from orders.models import HotOrder, OrderStageEvent, OutboxMessage, SaleAllocation

pytestmark = pytest.mark.django_db

CLIENT = 3  # pgbench's client id, for the split rows


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the designs are PostgreSQL statements, run by pgbench")


def _run(design: str, slug: str) -> int:
    """One run of the design's script; the orders it wrote."""
    script, _orders = designs.design_script(design, product_slug=slug)
    before = HotOrder.objects.count()
    with connection.cursor() as cursor:
        cursor.execute(script.strip().rstrip(";").replace(":client_id", str(CLIENT)))
    return HotOrder.objects.count() - before


def _scalar(sql: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


@pytest.fixture
def scratch(postgresql, allocation):
    # 20 units: 8 split rows of 2, and 5 unit rows.
    designs.scratch_tables_create(allocation_id=allocation.pk, allocated=allocation.allocated, units=5)
    yield allocation
    designs.scratch_tables_drop()


def test_each_design_writes_whole_orders_and_holds_their_units_where_it_says(scratch):
    slug = scratch.product.slug
    assert _run("one_row", slug) == 1
    assert SaleAllocation.objects.get(pk=scratch.pk).reserved == 1

    assert _run("split_rows", slug) == 1
    shard = CLIENT % designs.SHARDS
    assert _scalar(f"SELECT reserved FROM bench_allocation_shard WHERE shard = {shard}") == 1  # noqa: S608
    assert _scalar("SELECT sum(reserved) FROM bench_allocation_shard") == 1

    assert _run("unit_rows", slug) == 1
    assert _scalar("SELECT count(*) FROM bench_allocation_unit WHERE taken") == 1

    assert _run("group_commit", slug) == designs.GROUP
    assert SaleAllocation.objects.get(pk=scratch.pk).reserved == 1 + designs.GROUP

    orders = HotOrder.objects.all()
    count = 3 + designs.GROUP
    assert orders.count() == count
    assert len(set(orders.values_list("number", flat=True))) == count
    assert len(set(orders.values_list("idempotency_key", flat=True))) == count
    assert OrderStageEvent.objects.filter(order__in=orders).count() == count
    assert OutboxMessage.objects.filter(order__in=orders).count() == count
    assert _scalar("SELECT count(*) FROM events_event WHERE detail_type IS NOT NULL AND status = 'ACCEPTED'") == count


def test_no_design_sells_beyond_what_it_holds(scratch):
    slug = scratch.product.slug
    # The client's split row holds 2 units: the third buyer on it is refused.
    assert [_run("split_rows", slug) for _ in range(3)] == [1, 1, 0]
    # 5 unit rows: the sixth buyer finds none free.
    assert [_run("unit_rows", slug) for _ in range(6)] == [1, 1, 1, 1, 1, 0]
    # 20 units on the sale's row, 4 a commit: five groups, then nothing.
    assert [_run("group_commit", slug) for _ in range(6)] == [4, 4, 4, 4, 4, 0]
    assert SaleAllocation.objects.get(pk=scratch.pk).reserved == 20
    assert _run("one_row", slug) == 0


def test_a_closed_sale_takes_no_order_in_any_design(scratch):
    SaleAllocation.objects.filter(pk=scratch.pk).update(is_hot=False)
    for design in designs.DESIGNS:
        assert _run(design, scratch.product.slug) == 0, design
    assert _scalar("SELECT count(*) FROM bench_allocation_unit WHERE taken") == 0


def test_a_changed_acceptance_statement_is_noticed(monkeypatch):
    import orders.acceptance

    monkeypatch.setattr(orders.acceptance, "ACCEPT_SQL", "SELECT 1")
    for design in ("split_rows", "group_commit"):
        with pytest.raises(ValueError, match="ACCEPT_SQL changed"):
            designs.design_statement(design)
