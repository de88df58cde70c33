"""Every error of the legacy API is JSON in one shape: {"error", "detail"?, "fields"?}."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def assert_error_shape(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error
    assert isinstance(body.get("detail", ""), str)
    for name, messages in body.get("fields", {}).items():
        assert isinstance(name, str) and messages and all(isinstance(m, str) for m in messages)
    return body


@pytest.mark.parametrize(
    "path", ["/legacy-api/orders/L00000001", "/legacy-api/nothing-here", "/legacy-api/holds/a/b", "/legacy-api/"]
)
def test_a_path_that_names_nothing_is_404_json(client, path):
    assert_error_shape(client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [("put", "/legacy-api/orders"), ("delete", "/legacy-api/orders/1"), ("get", "/legacy-api/stats/reset")],
)
def test_a_method_an_endpoint_does_not_take_is_405_json(merchant_client, method, path):
    body = assert_error_shape(getattr(merchant_client, method)(path), 405, "method_not_allowed")
    assert body["detail"]


def test_a_reused_order_reference_with_another_body_is_422(post_order, order_body, muskie_rod):
    post_order(order_body())

    response = post_order(order_body(lines=[{"product": "muskie-casting-rod", "quantity": 3}]))

    body = assert_error_shape(response, 422, "reference_reused")
    assert "reference" in body["fields"]
    muskie_rod.refresh_from_db()
    assert muskie_rod.stock == 8


@pytest.mark.parametrize(
    "change",
    [
        {"customer": {"name": "Bob Bass", "email": "ada@example.com"}},
        {"payment": {"card_number": "5555555555554444"}},
    ],
)
def test_the_same_reference_from_another_buyer_or_card_is_422(post_order, order_body, muskie_rod, change):
    post_order(order_body())

    assert_error_shape(post_order(order_body(**change)), 422, "reference_reused")


def test_the_same_body_spelt_differently_is_still_a_replay(post_order, order_body, muskie_rod):
    first = post_order(order_body())

    again = post_order(
        order_body(
            customer={"name": "Ada Angler", "email": "ADA@example.com"},
            payment={"card_number": "4242 4242 4242 4242"},
        )
    )

    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
