"""Holds and stock of record over HTTP: units kept aside, replays, resizing, release, and orders
that draw from a hold (or only from what no hold keeps). Holds are the hot path's alone, so here
`client` (and `post_order`) carry its token; test_ownership.py shows every other caller refused."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from legacy_api.models import Hold, Order, PaymentAuthorisation, StockReceipt
from shop.models import Product

pytestmark = pytest.mark.django_db

HOLDS_URL = "/legacy-api/holds"


@pytest.fixture
def client(hotpath_client) -> Client:
    """The hot path: the only caller whose token takes, resizes and releases holds, and places
    the orders drawn on them."""
    return hotpath_client


def hold_body(**overrides) -> dict:
    return {"reference": "sale-1", "product": "muskie-casting-rod", "quantity": 6, **overrides}


def post_hold(client: Client, body: dict):
    return client.post(HOLDS_URL, data=json.dumps(body), content_type="application/json")


def patch_hold(client: Client, reference: str, body: dict):
    return client.patch(f"{HOLDS_URL}/{reference}", data=json.dumps(body), content_type="application/json")


def stock(client: Client, product: str = "muskie-casting-rod") -> dict:
    response = client.get(f"/legacy-api/stock/{product}")
    assert response.status_code == 200
    return response.json()


def test_hold_is_created_with_201_and_counted_as_held(client, muskie_rod):
    response = post_hold(client, hold_body())

    assert response.status_code == 201
    body = response.json()
    assert (body["reference"], body["product"], body["quantity"], body["status"]) == (
        "sale-1",
        "muskie-casting-rod",
        6,
        "open",
    )
    assert stock(client) == {"product": "muskie-casting-rod", "on_hand": 10, "held": 6, "available": 4}


def test_same_hold_again_is_a_200_replay_that_holds_nothing_more(client, muskie_rod):
    first = post_hold(client, hold_body())
    again = post_hold(client, hold_body())

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["reference"] == "sale-1"
    assert stock(client)["held"] == 6
    assert Hold.objects.count() == 1


@pytest.mark.parametrize("change", [{"quantity": 5}, {"product": "tourney-casting-rod"}])
def test_same_hold_reference_with_another_body_is_422(client, muskie_rod, tourney_rod, change):
    post_hold(client, hold_body())

    response = post_hold(client, hold_body(**change))

    assert response.status_code == 422
    assert response.json()["error"] == "reference_reused"
    assert stock(client)["held"] == 6
    assert stock(client, "tourney-casting-rod")["held"] == 0


def test_hold_larger_than_available_is_409_with_what_is_available(client, muskie_rod):
    post_hold(client, hold_body(reference="sale-a", quantity=7))

    response = post_hold(client, hold_body(reference="sale-b", quantity=4))

    assert response.status_code == 409
    assert response.json()["error"] == "out_of_stock"
    assert response.json()["available"] == 3
    assert not Hold.objects.filter(reference="sale-b").exists()
    assert stock(client)["held"] == 7


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"product": "muskie-casting-rod", "quantity": 1}, "reference"),
        (hold_body(reference="no spaces"), "reference"),
        (hold_body(product="no-such-rod"), "product"),
        (hold_body(quantity=0), "quantity"),
        (hold_body(quantity="3"), "quantity"),
        (hold_body(quantity=10**9), "quantity"),
        (hold_body(reference=12345), "reference"),
        (hold_body(reference=True), "reference"),
        (hold_body(product=12345), "product"),
        (hold_body(product=["muskie-casting-rod"]), "product"),
    ],
)
def test_invalid_hold_is_400_naming_the_field_and_holds_nothing(client, muskie_rod, body, field):
    response = post_hold(client, body)

    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid"
    assert field in response.json()["fields"]
    assert not Hold.objects.exists()
    assert stock(client)["held"] == 0


@pytest.mark.parametrize("reference", [12345, 1.5, False, {"a": "b"}])
def test_stock_receipt_with_a_reference_that_is_not_a_string_is_400_and_adds_nothing(
    merchant_client, muskie_rod, reference
):
    response = merchant_client.post(
        "/legacy-api/stock/muskie-casting-rod/receipts",
        data=json.dumps({"reference": reference, "quantity": 5}),
        content_type="application/json",
    )

    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid"
    assert list(response.json()["fields"]) == ["reference"]
    assert stock(merchant_client)["on_hand"] == 10


def test_stock_receipt_past_what_stock_on_hand_can_hold_is_400_and_adds_nothing(merchant_client, muskie_rod):
    """Stock on hand is a PostgreSQL integer: a receipt past its most was a 500 there."""
    Product.objects.filter(pk=muskie_rod.pk).update(stock=2_147_000_000)

    response = merchant_client.post(
        "/legacy-api/stock/muskie-casting-rod/receipts",
        data=json.dumps({"reference": "po-1", "quantity": 1_000_000}),
        content_type="application/json",
    )

    assert response.status_code == 400, response.content
    assert list(response.json()["fields"]) == ["quantity"]
    assert stock(merchant_client)["on_hand"] == 2_147_000_000
    assert not StockReceipt.objects.exists()


def test_hold_can_be_read_back_and_unknown_is_404_json(client, muskie_rod):
    post_hold(client, hold_body())

    assert client.get(f"{HOLDS_URL}/sale-1").json()["quantity"] == 6
    missing = client.get(f"{HOLDS_URL}/nope")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")


def test_patch_grows_a_hold_within_what_is_available_and_no_further(client, muskie_rod):
    post_hold(client, hold_body())

    grown = patch_hold(client, "sale-1", {"quantity": 10})
    too_far = patch_hold(client, "sale-1", {"quantity": 11})

    assert (grown.status_code, grown.json()["quantity"]) == (200, 10)
    assert too_far.status_code == 409
    assert (too_far.json()["error"], too_far.json()["available"]) == ("out_of_stock", 0)
    assert stock(client) == {"product": "muskie-casting-rod", "on_hand": 10, "held": 10, "available": 0}


def test_patch_shrinks_a_hold_and_gives_the_units_back(client, muskie_rod):
    post_hold(client, hold_body())

    response = patch_hold(client, "sale-1", {"quantity": 2})

    assert response.json()["quantity"] == 2
    assert stock(client)["available"] == 8


def test_patch_with_a_bad_quantity_is_400_and_changes_nothing(client, muskie_rod):
    post_hold(client, hold_body())

    response = patch_hold(client, "sale-1", {"quantity": -1})

    assert response.status_code == 400
    assert "quantity" in response.json()["fields"]
    assert stock(client)["held"] == 6


def test_delete_releases_what_is_left_and_again_changes_nothing(client, muskie_rod):
    post_hold(client, hold_body())

    first = client.delete(f"{HOLDS_URL}/sale-1")
    again = client.delete(f"{HOLDS_URL}/sale-1")

    assert (first.status_code, again.status_code) == (200, 200)
    assert (again.json()["status"], again.json()["quantity"]) == ("released", 0)
    assert stock(client) == {"product": "muskie-casting-rod", "on_hand": 10, "held": 0, "available": 10}
    assert patch_hold(client, "sale-1", {"quantity": 1}).status_code == 409


def test_stock_of_an_unknown_product_is_404_json(client, db):
    response = client.get("/legacy-api/stock/no-such-rod")
    assert (response.status_code, response.json()["error"]) == (404, "not_found")


# --- Orders and holds -------------------------------------------------------------------------


def test_order_naming_the_hold_draws_from_it_and_says_so(client, post_order, order_body, muskie_rod):
    post_hold(client, hold_body())

    response = post_order(order_body(hold="sale-1"))

    assert response.status_code == 201
    assert response.json()["hold"] == "sale-1"
    assert client.get(f"{HOLDS_URL}/sale-1").json()["quantity"] == 4
    assert stock(client) == {"product": "muskie-casting-rod", "on_hand": 8, "held": 4, "available": 4}


def test_order_without_a_hold_never_takes_held_units(client, post_order, order_body, muskie_rod):
    post_hold(client, hold_body(quantity=9))

    short = post_order(order_body(lines=[{"product": "muskie-casting-rod", "quantity": 2}]))
    fits = post_order(order_body(reference="ref-0002", lines=[{"product": "muskie-casting-rod", "quantity": 1}]))

    assert short.status_code == 409
    assert (short.json()["error"], short.json()["available"]) == ("out_of_stock", 1)
    assert (fits.status_code, fits.json()["hold"]) == (201, None)
    assert stock(client) == {"product": "muskie-casting-rod", "on_hand": 9, "held": 9, "available": 0}


def test_order_beyond_its_hold_is_409_voided_and_takes_nothing(client, post_order, order_body, muskie_rod):
    post_hold(client, hold_body(quantity=1))

    response = post_order(order_body(hold="sale-1"))

    assert response.status_code == 409
    assert (response.json()["error"], response.json()["available"]) == ("out_of_stock", 1)
    assert not Order.objects.exists()
    assert stock(client) == {"product": "muskie-casting-rod", "on_hand": 10, "held": 1, "available": 9}
    # The card was authorised before the stock was known short: that authorisation is voided.
    assert PaymentAuthorisation.objects.get().voided_at is not None


def test_order_naming_an_unknown_hold_is_400_naming_the_hold(post_order, order_body, muskie_rod):
    response = post_order(order_body(hold="nope"))

    assert response.status_code == 400
    assert "hold" in response.json()["fields"]
    assert not Order.objects.exists()
    assert not PaymentAuthorisation.objects.exists()


def test_the_same_order_with_and_without_the_hold_is_one_order(client, post_order, order_body, muskie_rod):
    """The storefront and the hot path's worker may both send one buyer's order: the hold is not
    part of its identity, and the answer tells whether the units came from the hold."""
    post_hold(client, hold_body())

    from_hold = post_order(order_body(hold="sale-1"))
    from_shop = post_order(order_body())

    assert (from_hold.status_code, from_shop.status_code) == (201, 200)
    assert from_shop.json()["id"] == from_hold.json()["id"]
    assert from_shop.json()["hold"] == "sale-1"
    assert Product.objects.get(pk=muskie_rod.pk).stock == 8


def test_stock_received_by_another_callers_token_is_403_saying_whose_it_is(client, muskie_rod):
    response = client.post(
        "/legacy-api/stock/muskie-casting-rod/receipts",
        data=json.dumps({"reference": "po-1", "quantity": 5}),
        content_type="application/json",
    )

    assert response.status_code == 403
    assert "receive stock" in response.json()["detail"]
    assert stock(client)["on_hand"] == 10
