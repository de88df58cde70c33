"""The merchant's sale allocation page against the real legacy API: opening, resizing and
closing a sale move its hold, and what the stock of record refuses is a message on the field
with nothing saved and nothing held."""

from __future__ import annotations

import pytest

from orders.models import SaleAllocation, SaleState
from orders.sales import sale_open
from tests.orders.conftest import order_accept_as_buyer
from tests.orders.sale_support import hold_quantity, legacy_serve, stock

pytestmark = pytest.mark.django_db(transaction=True)

ADD_URL = "/admin/orders/saleallocation/add/"


@pytest.fixture(autouse=True)
def legacy(settings, live_server, transactional_db) -> str:
    return legacy_serve(settings, live_server)


def change_url(allocation: SaleAllocation) -> str:
    return f"/admin/orders/saleallocation/{allocation.pk}/change/"


def form(product, **fields) -> dict:
    data = {"product": product.pk, "is_hot": "on", "allocated": 50, "per_order_limit": 2}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def field_errors(response, field: str) -> list[str]:
    return list(response.context["adminform"].form.errors.get(field, []))


def test_adding_a_hot_allocation_opens_the_sale_with_its_hold(admin_client, product):
    response = admin_client.post(ADD_URL, form(product, allocated=50))

    assert response.status_code == 302
    allocation = SaleAllocation.objects.get()
    assert (allocation.state, allocation.allocated) == (SaleState.OPEN, 50)
    assert hold_quantity(allocation.hold_reference) == 50 and stock().available == 50


def test_an_allocation_above_available_stock_is_a_message_on_allocated(admin_client, product):
    response = admin_client.post(ADD_URL, form(product, allocated=101))

    assert response.status_code == 200
    assert field_errors(response, "allocated") == ["Only 100 available in the stock of record: allocate at most that."]
    assert not SaleAllocation.objects.exists()
    assert stock().held == 0


def test_a_per_order_limit_of_zero_is_a_message_on_the_field(admin_client, product):
    response = admin_client.post(ADD_URL, form(product, per_order_limit=0))

    assert response.status_code == 200
    assert field_errors(response, "per_order_limit") == ["At least 1 unit per order."]
    assert not SaleAllocation.objects.exists() and stock().held == 0


def test_raising_the_allocation_grows_the_hold_and_edits_keep_reservations(admin_client, product):
    allocation = sale_open(product=product, units=20)
    order_accept_as_buyer(quantity=1)

    response = admin_client.post(change_url(allocation), form(product, allocated=30, per_order_limit=3))

    assert response.status_code == 302
    allocation.refresh_from_db()
    assert (allocation.allocated, allocation.per_order_limit, allocation.reserved) == (30, 3, 1)
    assert hold_quantity(allocation.hold_reference) == 30


def test_the_allocation_cannot_go_below_what_is_reserved_or_sold(admin_client, product):
    allocation = sale_open(product=product, units=20)
    order_accept_as_buyer(quantity=1)
    SaleAllocation.objects.filter(pk=allocation.pk).update(sold=5)

    response = admin_client.post(change_url(allocation), form(product, allocated=4))

    assert response.status_code == 200
    assert field_errors(response, "allocated") == ["At least 6: 6 are already reserved or sold."]
    assert hold_quantity(allocation.hold_reference) == 20


def test_switching_the_hot_path_off_closes_the_sale(admin_client, product):
    allocation = sale_open(product=product, units=20)

    response = admin_client.post(change_url(allocation), form(product, is_hot=None, allocated=20))

    assert response.status_code == 302
    allocation.refresh_from_db()
    assert (allocation.state, allocation.is_hot) == (SaleState.CLOSED, False)
    assert (stock().held, stock().available) == (0, 100)


def test_the_reconcile_action_reports_each_sale(admin_client, product):
    allocation = sale_open(product=product, units=20)

    response = admin_client.post(
        "/admin/orders/saleallocation/", {"action": "reconcile", "_selected_action": [allocation.pk]}, follow=True
    )

    assert [str(m) for m in response.context["messages"]] == ["muskie-casting-rod: owed 20, hold 20, drift +0: in step"]
