"""The orders an anonymous session may see (placed there, looked up, opened by a signed link)
are dropped when someone signs in or signs up on that browser: Django's login() keeps the
anonymous session's data, and the next person at the browser is not the guest who ordered."""

from __future__ import annotations

import pytest
from django.test import Client

from shop import order_links
from shop.models import PlacedOrder
from tests.shop import test_orders
from tests.shop.test_checkout import checkout_form, fill_basket

# The order pages' own: the lookup's throttle uncounted, and an order service that says nothing
# (what a session may see does not depend on it; the checkout test serves it).
from tests.shop.test_orders import legacy_api_down, lookup, lookups_not_counted_yet  # noqa: F401

make_order = test_orders.make_order
make_sale_order = test_orders.make_sale_order
PASSWORD = "a-long-test-password"


def sign_in(client: Client, username: str) -> None:
    assert client.post("/accounts/login/", {"username": username, "password": PASSWORD}).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_a_guests_checkout_is_not_shown_to_the_account_that_signs_in_next(client, legacy_api, rod, customer):
    fill_basket(client, rod, 1)
    placed = client.post("/checkout/", checkout_form(name="Gus Guest", address_line="9 Quiet Lane"))
    assert placed.status_code == 302
    number = PlacedOrder.objects.get().number
    assert client.get(f"/orders/{number}/").status_code == 200

    sign_in(client, customer.username)
    response = client.get(f"/orders/{number}/")

    assert response.status_code == 404
    assert "Gus Guest" not in response.content.decode() and "9 Quiet Lane" not in response.content.decode()


def test_looked_up_and_linked_orders_are_forgotten_on_sign_in(client, make_order, make_sale_order, customer):
    make_order(number="FS-100001", email="ada@example.com")
    sale = make_sale_order(email="ada@example.com")
    lookup(client, "FS-100001", "ada@example.com")
    client.get(order_links.order_link_path(number=sale.number, email="ada@example.com"))
    assert client.get("/orders/FS-100001/").status_code == 200
    assert client.get(f"/orders/{sale.number}/").status_code == 200

    sign_in(client, customer.username)

    assert client.get("/orders/FS-100001/").status_code == 404
    assert client.get(f"/orders/{sale.number}/").status_code == 404


def test_signing_up_forgets_the_guests_orders_too(client, make_order):
    make_order(number="FS-100001", email="ada@example.com")
    lookup(client, "FS-100001", "ada@example.com")

    signed_up = client.post(
        "/accounts/signup/",
        {"username": "newcomer", "email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert signed_up.status_code == 302 and "_auth_user_id" in client.session
    assert client.get("/orders/FS-100001/").status_code == 404


def test_a_customers_own_orders_and_basket_still_follow_the_sign_in(client, make_order, customer, rod):
    make_order(number="FS-100002", email="angler@example.com", customer=customer)
    fill_basket(client, rod, 2)

    sign_in(client, customer.username)

    assert client.get("/orders/FS-100002/").status_code == 200
    assert client.get("/api/basket").json()["lines"][0]["quantity"] == 2
