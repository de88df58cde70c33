"""A sale's route (orders.sale_route) as the admin and `sale open --route` set it: to the hot
path whatever the route said before, with the edge's warnings told to the merchant; and the
delete page of an open sale for one who may not delete sales; and a close switching the route
off before it waits on the legacy API."""

from __future__ import annotations

import socket
import threading

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages.storage.fallback import FallbackStorage
from django.db import connection
from django.test import RequestFactory

from edge import services
from edge.models import HOT_PATH_ORIGIN, Route
from orders import sale_route, sales
from orders.models import SaleAllocation, SaleState
from tests.conftest import eventually
from tests.edge.conftest import ensure_origins
from tests.orders.sale_support import legacy_serve

pytestmark = pytest.mark.django_db


def _request(user):
    request = RequestFactory().post("/admin/orders/saleallocation/")
    request.user = user
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def test_an_existing_sale_route_to_another_origin_is_not_reported_as_the_hot_path(product):
    """The route `<slug>-sale` exists, pointed at the storefront: before, it was switched on as it
    was, and the admin said 'its pages go to the hot path' while they went to the monolith."""
    ensure_origins()
    services.route_create(
        actor="test", name="muskie-casting-rod-sale", pattern="/shop/rods/muskie-casting-rod/*", origin="monolith"
    )

    sale_route.sale_route_on(product, actor="admin:admin")

    route = Route.objects.select_related("origin").get(name="muskie-casting-rod-sale")
    assert route.enabled
    assert route.origin is not None and route.origin.name == HOT_PATH_ORIGIN


def test_an_edge_warning_that_the_route_can_never_match_reaches_the_merchant(product, admin_user, capsys):
    """An earlier route covers /shop/*: the added sale route can never match. Before, the edge's
    warning went to the process's stderr, and the merchant was told only 'its pages go to the
    hot path'."""
    from django.contrib import admin

    from orders.admin_sales import SaleAllocationAdmin

    ensure_origins()
    services.route_create(actor="test", name="all-shop", pattern="/shop/*", origin="monolith", position=1, enabled=True)
    request = _request(admin_user)

    SaleAllocationAdmin(SaleAllocation, admin.site)._pages_to_sale(request, product)

    shown = [str(m) for m in request._messages]
    assert any("can never match" in m for m in shown), shown


def test_a_view_only_staff_member_is_refused_an_open_sale_s_delete_page(client, product, django_user_model, settings):
    """No delete permission: 403 telling nothing, as for a draft; not told 'close it first, then
    delete it', which they may do neither."""
    settings.ROOT_URLCONF = "config.urls"  # the admin (tests/orders/conftest serves the hot path)
    allocation = SaleAllocation.objects.create(product=product, allocated=10, is_hot=True, state=SaleState.OPEN)
    viewer = django_user_model.objects.create_user("viewer", "v@example.com", "a-long-test-password", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_saleallocation"))
    client.force_login(viewer)

    response = client.get(f"/admin/orders/saleallocation/{allocation.pk}/delete/")

    assert client.get(f"/admin/orders/saleallocation/{allocation.pk}/change/").status_code == 200  # may view it
    assert response.status_code == 403, (response.status_code, response.get("Location"))


@pytest.mark.django_db(transaction=True)
def test_a_close_sends_the_pages_to_the_storefront_before_it_waits_on_the_legacy_api(product, settings, live_server):
    """The sale takes no orders once closed: its route goes off then, not after the hold's
    follow-up, which waits on a busy legacy API up to its timeout while the hot path answers
    the product's page 404 and its orders `not_hot`."""
    ensure_origins()
    legacy_serve(settings, live_server)
    sale = sales.sale_open(product=product, units=10, per_order_limit=2)
    route = sale_route.sale_route_on(product, actor="test").name
    silent = socket.create_server(("127.0.0.1", 0))  # takes the connection, never answers
    settings.LEGACY_API_URL = f"http://127.0.0.1:{silent.getsockname()[1]}/legacy-api"
    settings.LEGACY_API_TIMEOUT = 4

    def close() -> None:
        try:
            sales.sale_close(allocation=SaleAllocation.objects.get(pk=sale.pk))
        finally:
            connection.close()

    closing = threading.Thread(target=close)
    closing.start()
    try:
        eventually(lambda: SaleAllocation.objects.get(pk=sale.pk).state == SaleState.CLOSING, timeout=2)
        eventually(lambda: not Route.objects.get(name=route).enabled, timeout=2, message="the route is still on")
    finally:
        closing.join(10)
        silent.close()
    assert SaleAllocation.objects.get(pk=sale.pk).state == SaleState.CLOSING  # the hold not told yet
