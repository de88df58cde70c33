"""Order pages: lookup by number and email, the confirmation page's access, My orders."""

from __future__ import annotations

import pytest
from django.test import Client

from shop.models import PlacedOrder


@pytest.fixture(autouse=True)
def legacy_api_down(settings, closed_port_url):
    """Privacy holds whatever the order service says; here it says nothing."""
    settings.LEGACY_API_URL = closed_port_url


@pytest.fixture
def make_order(db):
    counter = iter(range(1, 1000))

    def make(*, number: str, email: str, customer=None) -> PlacedOrder:
        n = next(counter)
        return PlacedOrder.objects.create(
            number=number,
            legacy_id=n,
            reference=f"ref-{number}",
            customer=customer,
            email=email,
            name="Ada Angler",
            address_line="1 Lake Road",
            city="Hayward",
            postcode="54843",
            country="United States",
            total_cents=4999,
            processing_ms=42,
        )

    return make


@pytest.fixture
def adas_order(make_order) -> PlacedOrder:
    return make_order(number="FS-100001", email="ada@example.com")


def lookup(client: Client, number: str, email: str):
    return client.post("/orders/lookup/", {"number": number, "email": email})


def test_lookup_with_number_and_email_opens_the_order(client, adas_order):
    response = lookup(client, "FS-100001", "ada@example.com")

    assert response.status_code == 302
    assert response["Location"] == "/orders/FS-100001/"
    page = client.get("/orders/FS-100001/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "FS-100001" in html
    assert "Processed in <strong data-processing-ms>42 ms</strong>" in html
    # The order service is down: the receipt is shown without its lines.
    assert "cannot be shown right now" in html


def test_lookup_ignores_the_case_of_the_email(client, adas_order):
    assert lookup(client, "FS-100001", "ADA@Example.com").status_code == 302


def test_lookup_with_a_wrong_email_is_not_found_like_a_wrong_number(client, adas_order):
    wrong_email = lookup(client, "FS-100001", "mallory@example.com")
    wrong_number = lookup(Client(), "FS-999999", "ada@example.com")

    assert wrong_email.status_code == wrong_number.status_code == 404
    message = "We could not find an order with that number and email."
    assert message in wrong_email.content.decode()
    assert message in wrong_number.content.decode()
    assert client.get("/orders/FS-100001/").status_code == 404


def test_the_order_page_without_access_is_404(client, adas_order):
    assert client.get("/orders/FS-100001/").status_code == 404


def test_an_unknown_order_number_is_404(client, db):
    assert client.get("/orders/FS-000000/").status_code == 404


def test_another_customers_order_is_404_even_when_signed_in(make_order, customer, other_customer):
    make_order(number="FS-200001", email="angler@example.com", customer=customer)
    owner, rival = Client(), Client()
    owner.force_login(customer)
    rival.force_login(other_customer)

    assert owner.get("/orders/FS-200001/").status_code == 200
    assert rival.get("/orders/FS-200001/").status_code == 404


def test_access_from_a_lookup_stays_with_that_session(client, adas_order):
    lookup(client, "FS-100001", "ada@example.com")

    assert client.get("/orders/FS-100001/").status_code == 200
    assert Client().get("/orders/FS-100001/").status_code == 404


def test_my_orders_lists_only_the_customers_own_orders(make_order, customer, other_customer):
    make_order(number="FS-300001", email="angler@example.com", customer=customer)
    make_order(number="FS-300002", email="rival@example.com", customer=other_customer)
    client = Client()
    client.force_login(customer)

    html = client.get("/account/orders/").content.decode()

    assert "FS-300001" in html
    assert "FS-300002" not in html


def test_my_orders_needs_a_sign_in(client, db):
    response = client.get("/account/orders/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
