"""Every error of the legacy API is JSON in one shape: {"error", "detail"?, "fields"?}."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.legacy_api.conftest import bearer

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


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("caller", ["storefront", None])
def test_a_path_that_names_nothing_is_404_json_whatever_the_method(method, caller):
    """Checked as a browser's request is, with CSRF enforced: no form posts to the API, so a write
    to an unknown path is a 404 too, not the site's CSRF refusal."""
    client = Client(enforce_csrf_checks=True, headers=bearer(caller) if caller else {})

    response = client.generic(method, "/legacy-api/nothing", data=b"{}", content_type="application/json")

    assert response.status_code == 404, response.content
    assert response["Content-Type"].startswith("application/json")
    if method != "HEAD":
        assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("caller", "method", "path"),
    [
        ("storefront", "put", "/legacy-api/orders"),
        ("storefront", "delete", "/legacy-api/orders/1"),
        ("hotpath", "put", "/legacy-api/holds/sale-1"),
        ("merchant", "get", "/legacy-api/stats/reset"),
    ],
)
def test_a_method_an_endpoint_does_not_take_is_405_json(caller, method, path):
    """Asked by a caller the endpoint serves: any other is refused (403) before the method is looked at."""
    client = Client(headers=bearer(caller))
    body = assert_error_shape(getattr(client, method)(path), 405, "method_not_allowed")
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
