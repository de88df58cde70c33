"""The last order of a closing sale settles while another change holds the sale's lock: the
sale is still closed and its hold released soon after, not left closing until the
reconciliation."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from orders import placement, sales, tasks
from orders.models import SaleState
from tests.orders.conftest import order_accept_as_buyer, order_claimed
from tests.orders.sale_support import hold_quantity, legacy_serve, stock

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def legacy(settings, live_server, transactional_db) -> str:
    return legacy_serve(settings, live_server)


@pytest.fixture
def closing(product):
    """A closing sale whose one order in flight has just failed: nothing needs its hold."""
    allocation = sales.sale_open(product=product, units=10, per_order_limit=2)
    order = order_accept_as_buyer(quantity=1)
    sales.sale_close(allocation=allocation)
    order_claimed(order.pk)
    placement.order_fail(order_id=order.pk, stage="card_declined")
    allocation.refresh_from_db()
    assert allocation.state == SaleState.CLOSING and hold_quantity(allocation.hold_reference) == 1
    return allocation, order


def test_settling_under_another_change_says_so_and_changes_nothing(product, closing):
    allocation, order = closing
    with sales.sale_lock(product.pk):
        assert sales.sale_order_settled(order_id=order.pk) is False
    allocation.refresh_from_db()
    assert allocation.state == SaleState.CLOSING and hold_quantity(allocation.hold_reference) == 1

    assert sales.sale_order_settled(order_id=order.pk) is True
    allocation.refresh_from_db()
    assert allocation.state == SaleState.CLOSED and hold_quantity(allocation.hold_reference) == 0
    assert stock().held == 0


def test_the_worker_asks_again_when_the_sale_was_busy(product, closing, monkeypatch):
    allocation, order = closing
    monkeypatch.setattr(placement, "order_send_to_legacy", lambda **_: "failed")
    published = []
    monkeypatch.setattr(tasks.sale_settle, "apply_async", lambda **kw: published.append(kw))

    with sales.sale_lock(product.pk):
        assert tasks.order_process.apply(args=[order.pk]).get() == "failed"
    assert [call["args"] for call in published] == [[order.pk]]

    # Once the lock is free, the follow-up closes the sale and releases its hold.
    assert tasks.sale_settle.apply(args=[order.pk]).get() == "settled"
    allocation.refresh_from_db()
    assert allocation.state == SaleState.CLOSED and hold_quantity(allocation.hold_reference) == 0


def test_the_follow_up_tries_again_while_the_sale_stays_busy(product, closing, monkeypatch):
    allocation, order = closing
    retried = []

    def retry(**kw):
        retried.append(kw)
        raise RuntimeError("retried")

    monkeypatch.setattr(tasks.sale_settle, "retry", retry)
    with sales.sale_lock(product.pk), pytest.raises(RuntimeError, match="retried"):
        tasks.sale_settle.run(order.pk)
    assert len(retried) == 1 and 1 <= retried[0]["countdown"] < 2
    allocation.refresh_from_db()
    assert allocation.state == SaleState.CLOSING


def test_an_order_of_an_open_sale_needs_no_follow_up(product):
    sales.sale_open(product=product, units=10, per_order_limit=2)
    order = order_accept_as_buyer(quantity=1)
    assert sales.sale_order_settled(order_id=order.pk) is True


def test_the_follow_up_asks_again_when_the_database_or_cache_is_restarting(product, closing, monkeypatch):
    retried = []

    def restarting(**_):
        raise OperationalError("the database system is starting up")

    def retry(**kw):
        retried.append(kw)
        raise RuntimeError("retried")

    monkeypatch.setattr(sales, "sale_order_settled", restarting)
    monkeypatch.setattr(tasks.sale_settle, "retry", retry)
    with pytest.raises(RuntimeError, match="retried"):
        tasks.sale_settle.run(closing[1].pk)
    assert len(retried) == 1
