"""A sale's opening and closing in the unified log: one SALE event from shop.merchant each,
written in the transaction of the step (the allocation's row and its event commit together),
none for a refused step; beside them, the legacy API's HOLD and STOCK events of its hold."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from django.db import connection

from events.models import Event
from orders import sales
from orders.models import SaleAllocation
from tests.orders.sale_support import legacy_serve

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "events/schema/envelope.schema.json").read_text())

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def legacy(settings, live_server, transactional_db) -> str:
    url = legacy_serve(settings, live_server)
    yield url
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for event in Event.objects.all():
        validator.validate(event.envelope())


def sale_events() -> list[Event]:
    return list(Event.objects.filter(type="SALE").order_by("position"))


def row_xid(allocation: SaleAllocation) -> int:
    """The 32-bit id of the transaction that last wrote the allocation's row."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM orders_saleallocation WHERE id = %s", [allocation.pk])
        return int(cursor.fetchone()[0])


def test_opening_and_closing_a_sale_write_one_sale_event_each_with_the_step(product):
    allocation = sales.sale_open(product=product, units=8, per_order_limit=2)

    (opened,) = sale_events()
    assert (opened.source, opened.type, opened.subtype, opened.status) == (
        "shop.merchant",
        "SALE",
        "ALLOCATION",
        "OPENED",
    )
    assert opened.data == {
        "product": "muskie-casting-rod",
        **{"allocated": 8, "reserved": 0, "sold": 0, "per_order_limit": 2},
        **{"hold": allocation.hold_reference, "starts_at": None, "ends_at": None},
    }
    # xid8 modulo 2**32 is the row's 32-bit xmin: the row and its event were one transaction.
    assert opened.xid % 2**32 == row_xid(allocation)

    sales.sale_close(allocation=allocation)

    closed = sale_events()[-1]
    assert [e.status for e in sale_events()] == ["OPENED", "CLOSED"]
    assert (closed.data["allocated"], closed.data["sold"], closed.data["hold"]) == (0, 0, allocation.hold_reference)
    holds = Event.objects.filter(type="HOLD", data__reference=allocation.hold_reference).order_by("position")
    assert [e.status for e in holds] == ["TAKEN", "RELEASED"]
    # The hold was taken before the sale opened and released after it closed.
    assert holds[0].position < opened.position < closed.position < holds[1].position


def test_a_refused_opening_or_closing_writes_no_sale_event(product):
    with pytest.raises(sales.SaleRefused):
        sales.sale_open(product=product, units=101)
    with pytest.raises(sales.SaleRefused):
        sales.sale_close(allocation=SaleAllocation.objects.create(product=product, allocated=5))

    assert Event.objects.count() == 0


def test_an_opening_that_fails_after_its_event_leaves_neither_the_sale_nor_its_event(product, monkeypatch):
    real_append = sales._sale_event_append

    def append_then_fail(allocation, *, status):
        real_append(allocation, status=status)
        raise RuntimeError("the step fails after its event, before COMMIT")

    monkeypatch.setattr(sales, "_sale_event_append", append_then_fail)
    with pytest.raises(RuntimeError):
        sales.sale_open(product=product, units=8)

    assert not sale_events()
    assert not SaleAllocation.objects.exists()
    # The hold taken first was given back, and both are in the log.
    holds = Event.objects.filter(type="HOLD").order_by("position")
    assert [e.status for e in holds] == ["TAKEN", "RELEASED"]
