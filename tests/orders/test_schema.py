"""The hot path's published schema (orders.api_schema): served per hot product, and the answers
the views really give (202, 400, 415, 405, status) fit the schemas it states for them."""

from __future__ import annotations

import json
import uuid

import jsonschema
import pytest
from django.test import Client

from tests.orders.conftest import ORDERS_URL, PREFIX, nothing_reserved, order_body, post_order

pytestmark = pytest.mark.django_db
SCHEMA_URL = PREFIX + "orders/schema"


@pytest.fixture
def schema(client, allocation) -> dict:
    response = client.get(SCHEMA_URL)
    assert response.status_code == 200
    return response.json()


def answer_schema(schema: dict, path: str, method: str, status: int) -> dict:
    return schema["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]


def test_schema_names_the_products_own_urls_and_its_per_order_limit(schema, allocation):
    assert set(schema["paths"]) == {
        "/shop/rods/muskie-casting-rod/orders",
        "/shop/rods/muskie-casting-rod/stock",
        "/shop/rods/muskie-casting-rod/orders/{number}/{token}",
    }
    order = schema["paths"][ORDERS_URL]["post"]
    body = order["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["quantity"] == {"type": "integer", "minimum": 1, "maximum": allocation.per_order_limit}
    assert body["required"] == ["quantity", "customer", "payment"]
    key = order["parameters"][0]
    assert (key["name"], key["in"], key["required"], key["schema"]["maxLength"]) == (
        "Idempotency-Key",
        "header",
        True,
        255,
    )
    expected = {"201", "202", "400", "402", "404", "405", "409", "413", "415", "422", "429", "503"}
    assert set(order["responses"]) == expected


def test_schema_of_a_product_off_the_hot_path_is_not_found_in_json(client, product):
    response = client.get(SCHEMA_URL)
    assert response.status_code == 404
    assert response.json()["error"] == "not_hot" and response.json()["detail"]


def test_accepted_order_and_its_status_fit_the_schema(client, schema):
    accepted = post_order(client, order_body())
    assert accepted.status_code == 202
    jsonschema.validate(accepted.json(), answer_schema(schema, ORDERS_URL, "post", 202))
    status = client.get(accepted.json()["status_url"])
    path = "/shop/rods/muskie-casting-rod/orders/{number}/{token}"
    jsonschema.validate(status.json(), answer_schema(schema, path, "get", 200))


@pytest.mark.parametrize(
    "body",
    [
        order_body(card="4242 4242 4242 4241"),
        {"quantity": 0, "customer": {}, "payment": {"card_number": True}},
        "[1, 2]",
    ],
)
def test_invalid_body_fits_the_error_shape_with_lists(client, schema, allocation, body):
    response = post_order(client, body)
    assert response.status_code == 400
    jsonschema.validate(response.json(), answer_schema(schema, ORDERS_URL, "post", 400))
    assert all(isinstance(messages, list) for messages in response.json()["fields"].values())
    assert nothing_reserved(allocation)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_body_not_declared_json_is_415_and_reserves_nothing(client, schema, allocation, content_type):
    response = client.post(
        ORDERS_URL, json.dumps(order_body()), content_type=content_type, HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex
    )
    assert response.status_code == 415
    body = response.json()
    assert (body["error"], body["fields"]) == ("unsupported_media_type", {"content_type": ["Send application/json."]})
    jsonschema.validate(body, answer_schema(schema, ORDERS_URL, "post", 415))
    assert nothing_reserved(allocation)


@pytest.mark.parametrize("url", [PREFIX + "stock", ORDERS_URL + "/T1/" + "x" * 32])
def test_read_only_urls_answer_another_method_with_405_in_json(allocation, url):
    client = Client(enforce_csrf_checks=True)  # as a browser-less caller meets it: no CSRF token
    response = client.post(url, "{}", content_type="application/json")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json()["error"] == "method_not_allowed" and response.json()["detail"]
