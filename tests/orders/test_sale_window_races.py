"""A merchant moves a live sale's end in the same instant as the beat closes the sale at its old
end: the two are ordered by the sale's row. Either the new end is saved first, and the beat,
asking again as it closes, leaves the sale open; or the beat closes it first, and the merchant
is told the sale closed, with nothing saved. Never a merchant told "changed successfully" about
a window the sale no longer has."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from orders import sale_form, sale_window, sales
from orders.models import SaleAllocation, SaleState
from orders.sales import sale_open
from tests.orders.sale_support import legacy_serve, stock

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def legacy(settings, live_server, transactional_db) -> str:
    return legacy_serve(settings, live_server)


def _elsewhere(target) -> None:
    """Runs `target` to its commit on a connection of its own, as another process would."""
    failed: list[BaseException] = []

    def run():
        try:
            target()
        except BaseException as exc:  # the test reads what it raised
            failed.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive() and not failed, failed


def _ended_sale(product) -> SaleAllocation:
    """An open sale whose end passed a moment ago: the beat has not closed it yet."""
    allocation = sale_open(product=product, units=20, ends_at=timezone.now() + timedelta(hours=1))
    SaleAllocation.objects.filter(pk=allocation.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    return SaleAllocation.objects.get(pk=allocation.pk)


def _admin_form(allocation, *, ends_at, loaded_version) -> dict:
    local = timezone.localtime(ends_at)
    return {
        "product": allocation.product_id,
        "is_hot": "on",
        "allocated": allocation.allocated,
        "per_order_limit": allocation.per_order_limit,
        "ends_at_0": local.strftime("%Y-%m-%d"),
        "ends_at_1": local.strftime("%H:%M:%S"),
        "loaded_version": loaded_version,
    }


def test_a_sale_extended_after_the_beat_read_it_as_due_stays_open(product, monkeypatch):
    allocation = _ended_sale(product)
    extended = timezone.now() + timedelta(minutes=30)
    real_close = sales.sale_close

    def merchant_extends_then_close(**kwargs):
        # The beat has read the sale as due; the merchant's new end commits before its close.
        _elsewhere(
            lambda: sale_form.sale_update(
                product=product, is_hot=True, allocated=20, per_order_limit=2, ends_at=extended
            )
        )
        return real_close(**kwargs)

    monkeypatch.setattr(sales, "sale_close", merchant_extends_then_close)

    assert sale_window.sales_due_close() == []

    allocation.refresh_from_db()
    assert (allocation.state, allocation.is_hot, allocation.ends_at) == (SaleState.OPEN, True, extended)
    assert stock().held == 20


def test_a_sale_closed_by_the_beat_while_its_end_was_being_moved_says_so_and_saves_nothing(
    admin_client, product, monkeypatch
):
    allocation = _ended_sale(product)
    page = admin_client.get(f"/admin/orders/saleallocation/{allocation.pk}/change/")
    version = page.context["adminform"].form["loaded_version"].value()
    real_check = sale_form.sale_terms_check

    def beat_closes_meanwhile(**kwargs):
        # The page's version was checked; the beat closes the sale at its old end before the save.
        real_check(**kwargs)
        _elsewhere(sale_window.sales_due_close)

    monkeypatch.setattr(sale_form, "sale_terms_check", beat_closes_meanwhile)
    response = admin_client.post(
        f"/admin/orders/saleallocation/{allocation.pk}/change/",
        _admin_form(allocation, ends_at=timezone.now() + timedelta(minutes=30), loaded_version=version),
    )

    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.non_field_errors())
    assert "closed" in errors and "nothing was saved" in errors, errors
    closed = SaleAllocation.objects.get(pk=allocation.pk)
    assert (closed.state, closed.is_hot, closed.ends_at) == (SaleState.CLOSED, False, allocation.ends_at)
    assert stock().held == 0


def test_a_sale_closed_by_the_beat_before_its_extension_is_read_is_not_opened_again(admin_client, product, monkeypatch):
    """The page's version is checked against the sale as the request first read it; the beat
    closing the sale after that check, before the save reads the sale again, left a closed sale
    and a page still asking for "hot": the save opened a new sale (a fresh hold, its sold
    counted from 0) where the merchant had only moved an end."""
    from orders.admin_sales import SaleAllocationForm

    allocation = _ended_sale(product)
    page = admin_client.get(f"/admin/orders/saleallocation/{allocation.pk}/change/")
    version = page.context["adminform"].form["loaded_version"].value()
    real_clean = SaleAllocationForm.clean

    def beat_closes_after_the_version_check(form):
        cleaned = real_clean(form)
        _elsewhere(sale_window.sales_due_close)
        return cleaned

    monkeypatch.setattr(SaleAllocationForm, "clean", beat_closes_after_the_version_check)
    response = admin_client.post(
        f"/admin/orders/saleallocation/{allocation.pk}/change/",
        _admin_form(allocation, ends_at=timezone.now() + timedelta(minutes=30), loaded_version=version),
    )

    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.non_field_errors())
    assert "closed" in errors and "nothing was saved" in errors, errors
    closed = SaleAllocation.objects.get(pk=allocation.pk)
    assert (closed.state, closed.is_hot, closed.hold_reference) == (SaleState.CLOSED, False, allocation.hold_reference)
    assert stock().held == 0
