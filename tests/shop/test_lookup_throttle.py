"""The order lookup's throttle per order number: failed tries at one number are counted
whichever address makes them, so guesses spread over many addresses still stop."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from shop import lookup_throttle
from tests.shop import test_orders
from tests.shop.test_orders import lookup

# The order lookup's own fixtures, shared with its first test file.
make_order = test_orders.make_order
make_sale_order = test_orders.make_sale_order

TOO_MANY_FOR_THE_NUMBER = "Too many tries for this order number."


@pytest.fixture(autouse=True)
def nothing_counted_yet(settings, closed_port_url, counting_clock_pinned):
    """The counts live in the cache, which outlives each test's database."""
    settings.LEGACY_API_URL = closed_port_url
    cache.clear()
    yield
    cache.clear()


def from_address(n: int) -> Client:
    return Client(REMOTE_ADDR=f"10.1.{n // 250}.{n % 250 + 1}")


def test_twenty_failed_tries_at_one_number_from_twenty_addresses_stop_the_next_even_when_right(make_order):
    make_order(number="FS-100001", email="ada@example.com")
    assert lookup_throttle.NUMBER_LIMIT == 20

    failed = [
        lookup(from_address(n), "FS-100001", f"guess{n}@example.com").status_code
        for n in range(lookup_throttle.NUMBER_LIMIT)
    ]
    assert failed == [404] * 20

    buyer = from_address(99)
    refused = lookup(buyer, "FS-100001", "ada@example.com")  # right, but the number is worn out
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= lookup_throttle.NUMBER_WINDOW_SECONDS
    assert TOO_MANY_FOR_THE_NUMBER in refused.content.decode()
    assert buyer.get("/orders/FS-100001/").status_code == 404
    # The same number in another case is the same number.
    assert lookup(from_address(100), "fs-100001", "ada@example.com").status_code == 429


def test_a_worn_out_number_leaves_other_numbers_and_that_address_alone(make_order):
    make_order(number="FS-100001", email="ada@example.com")
    make_order(number="FS-100002", email="bob@example.com")
    for n in range(lookup_throttle.NUMBER_LIMIT):
        lookup(from_address(n), "FS-100001", "guess@example.com")

    response = lookup(from_address(0), "FS-100002", "bob@example.com")

    assert response.status_code == 302
    assert response["Location"] == "/orders/FS-100002/"


def test_successful_lookups_do_not_wear_a_number_out(make_order):
    make_order(number="FS-100001", email="ada@example.com")

    codes = {
        lookup(from_address(n), "FS-100001", "ada@example.com").status_code
        for n in range(lookup_throttle.NUMBER_LIMIT + 5)
    }

    assert codes == {302}


def test_failed_tries_at_a_sale_order_number_are_counted_across_addresses(make_sale_order, monkeypatch):
    monkeypatch.setattr(lookup_throttle, "NUMBER_LIMIT", 3)
    make_sale_order(email="ada@example.com", legacy_number="L00000042")
    for n, digits in enumerate(["0000", "1111", "2222"]):
        assert lookup(from_address(n), "T000001", "ada@example.com", card_last4=digits).status_code == 404

    refused = lookup(from_address(50), "T000001", "ada@example.com", card_last4="4242")

    assert refused.status_code == 429
    assert "data-order-status" not in refused.content.decode()


def test_a_sale_order_has_one_budget_of_tries_whichever_of_its_numbers_is_typed(make_sale_order, monkeypatch):
    """Its T-number and the L-number old confirmation emails carry name one order: guesses at
    one count against the other."""
    monkeypatch.setattr(lookup_throttle, "NUMBER_LIMIT", 3)
    make_sale_order(email="ada@example.com", legacy_number="L00000042")
    for n, (number, digits) in enumerate([("T000001", "0000"), ("L00000042", "1111"), ("t000001", "2222")]):
        assert lookup(from_address(n), number, "ada@example.com", card_last4=digits).status_code == 404

    for n, number in enumerate(["L00000042", "l00000042", "T000001"], start=50):
        refused = lookup(from_address(n), number, "ada@example.com", card_last4="4242")
        assert refused.status_code == 429
        assert TOO_MANY_FOR_THE_NUMBER in refused.content.decode()


def test_a_success_by_either_number_takes_its_try_back_from_the_orders_budget(make_sale_order, monkeypatch):
    monkeypatch.setattr(lookup_throttle, "NUMBER_LIMIT", 2)
    make_sale_order(email="ada@example.com", legacy_number="L00000042")
    assert lookup(from_address(0), "T000001", "ada@example.com", card_last4="0000").status_code == 404

    for n in range(1, 6):
        assert lookup(from_address(n), "L00000042", "ada@example.com").status_code == 200
    assert lookup(from_address(9), "T000001", "ada@example.com", card_last4="1111").status_code == 404
    assert lookup(from_address(10), "T000001", "ada@example.com").status_code == 429
