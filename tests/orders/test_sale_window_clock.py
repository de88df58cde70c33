"""The beat closes a sale at its end on the database's clock, the clock acceptance judges the
window by: a beat host whose clock runs ahead or behind neither cuts the sale short nor keeps
it open past its end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orders import sale_window, sales
from orders.models import SaleAllocation, SaleState
from tests.orders.sale_support import legacy_serve, stock

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def legacy(settings, live_server, transactional_db) -> str:
    return legacy_serve(settings, live_server)


def host_clock_off_by(monkeypatch, offset: timedelta) -> None:
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + offset)


def test_a_beat_whose_clock_runs_ahead_leaves_the_sale_open_until_its_end(product, monkeypatch):
    allocation = sales.sale_open(product=product, units=8, ends_at=timezone.now() + timedelta(minutes=10))
    host_clock_off_by(monkeypatch, timedelta(minutes=15))

    assert sale_window.sales_due_close() == []

    allocation.refresh_from_db()
    assert (allocation.state, allocation.is_hot) == (SaleState.OPEN, True)
    assert stock().held == 8


def test_a_beat_whose_clock_runs_behind_closes_the_sale_at_its_end(product, monkeypatch):
    allocation = sales.sale_open(product=product, units=8, ends_at=timezone.now() + timedelta(hours=1))
    SaleAllocation.objects.filter(pk=allocation.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    host_clock_off_by(monkeypatch, -timedelta(minutes=15))

    assert sale_window.sales_due_close() == ["muskie-casting-rod"]

    allocation.refresh_from_db()
    assert (allocation.state, allocation.is_hot) == (SaleState.CLOSED, False)
    assert stock().held == 0
