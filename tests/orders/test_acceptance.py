"""The two ways of accepting an order (orders.acceptance): ACCEPT_SQL on PostgreSQL and the ORM
transaction elsewhere, run side by side on PostgreSQL so that CI proves they write the same
rows and the same event and refuse the same orders."""

import pytest
from django.db import connection

from events.models import Event
from orders import acceptance, lifecycle, services
from orders.models import HotOrder, OutboxMessage, SaleAllocation
from tests.orders.conftest import order_accept_as_buyer

pytestmark = pytest.mark.django_db

# What differs between any two orders whatever wrote them.
UNIQUE = {"id", "number", "token", "idempotency_key", "fingerprint", "card_sealed", "reserved_until"}
UNIQUE |= {"created_at", "updated_at"}


def accept_with(monkeypatch, *, one_statement: bool, key: str, **body):
    monkeypatch.setattr(acceptance, "_accept_in_one_statement", lambda: one_statement)
    return order_accept_as_buyer(idempotency_key=key, **body)


def written(order: HotOrder) -> dict:
    """Everything acceptance wrote for one order, with what is unique to it left out."""
    row = {k: v for k, v in HotOrder.objects.values().get(pk=order.pk).items() if k not in UNIQUE}
    history = list(order.history.values_list("stage", "detail"))
    (event,) = Event.objects.filter(source=lifecycle.SOURCE, resources=[order.number])
    data = dict(event.data)
    assert data.pop("number") == order.number
    fields = (event.source, event.detail_type, event.type, event.subtype, event.status, event.trace_id)
    return {
        "order": row,
        "history": history,
        "outbox": OutboxMessage.objects.filter(order=order).count(),
        "event": (fields, data, event.xid is not None),
    }


def test_the_statement_and_the_orm_write_the_same_rows_and_the_same_event(allocation, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("ACCEPT_SQL runs on PostgreSQL only")
    body = {"quantity": 2, "name": "Ann Lee", "email": "ann@example.com"}
    by_statement = accept_with(monkeypatch, one_statement=True, key="statement-1", **body)
    by_orm = accept_with(monkeypatch, one_statement=False, key="orm-1", **body)

    assert by_statement.number != by_orm.number
    assert written(by_statement) == written(by_orm)
    assert written(by_orm)["event"][0][4] == "ACCEPTED"
    allocation.refresh_from_db()
    assert (allocation.reserved, allocation.sold) == (4, 0)


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"allocated": 1}, services.SoldOut),
        ({"is_hot": False}, services.NotHot),
        ({"starts_at": "2999-01-01T00:00Z"}, services.SaleNotStarted),
        ({"ends_at": "2000-01-01T00:00Z"}, services.SaleEnded),
    ],
)
def test_the_statement_and_the_orm_refuse_the_same_orders_and_write_nothing(allocation, monkeypatch, change, refusal):
    if connection.vendor != "postgresql":
        pytest.skip("ACCEPT_SQL runs on PostgreSQL only")
    # The cached product still says the sale is on: the write itself must refuse.
    from orders.selectors import hot_product_get

    hot_product_get(category="rods", product="muskie-casting-rod")
    SaleAllocation.objects.filter(pk=allocation.pk).update(**change)
    for one_statement in (True, False):
        with pytest.raises(refusal):
            accept_with(monkeypatch, one_statement=one_statement, key=f"refused-{one_statement}", quantity=2)
    assert not HotOrder.objects.exists() and not Event.objects.exists()
    allocation.refresh_from_db()
    assert allocation.reserved == 0
