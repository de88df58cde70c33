"""The basket API's published schema (shop.api_schema) at /api/schema, the answers the API
really gives fitting it, and the monolith's buy-now refusing a body not sent as JSON (415)."""

from __future__ import annotations

import json

import jsonschema
import pytest
from django.test import Client

from shop.models import PlacedOrder
from shop.services import MAX_LINE_QUANTITY
from tests.shop.conftest import patch_json, post_json

pytestmark = pytest.mark.django_db
ITEMS = "/api/basket/items"


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/api/schema")
    assert response.status_code == 200
    return response.json()


def answer_schema(schema: dict, path: str, method: str, status: int) -> dict:
    return schema["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]


def test_schema_names_every_basket_endpoint_and_the_limits_the_code_enforces(schema):
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {"/api/basket", "/api/basket/items", "/api/basket/items/{slug}"}
    assert set(schema["paths"]["/api/basket/items/{slug}"]) == {"parameters", "patch", "delete"}
    add = schema["paths"][ITEMS]["post"]
    body = add["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["quantity"] == {"type": "integer", "minimum": 1, "maximum": MAX_LINE_QUANTITY}
    patch = schema["paths"]["/api/basket/items/{slug}"]["patch"]["requestBody"]["content"]["application/json"]
    assert patch["schema"]["properties"]["quantity"]["minimum"] == 0
    assert set(add["responses"]) == {"200", "400", "403", "405", "409", "413", "415", "503"}


@pytest.mark.parametrize("url", ["/api/schema", "/api/basket"])
def test_read_only_urls_answer_another_method_with_405_even_without_a_csrf_token(url):
    client = Client(enforce_csrf_checks=True)
    response = client.put(url, "{}", content_type="application/json")
    assert response.status_code == 405
    assert "GET" in response["Allow"].split(", ")
    assert response.json()["error"] == "method_not_allowed" and response.json()["detail"]


def test_basket_writes_without_a_csrf_token_are_403_in_json(rod):
    client = Client(enforce_csrf_checks=True)
    response = post_json(client, ITEMS, {"product": rod.slug, "quantity": 1})
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"


def test_basket_answers_fit_the_schema(client, schema, rod):
    added = post_json(client, ITEMS, {"product": rod.slug, "quantity": 2})
    jsonschema.validate(added.json(), answer_schema(schema, ITEMS, "post", 200))
    short = post_json(client, ITEMS, {"product": rod.slug, "quantity": 50})
    assert short.status_code == 409
    jsonschema.validate(short.json(), answer_schema(schema, ITEMS, "post", 409))
    invalid = patch_json(client, f"{ITEMS}/{rod.slug}", {"quantity": -1})
    assert invalid.status_code == 400
    jsonschema.validate(invalid.json(), answer_schema(schema, "/api/basket/items/{slug}", "patch", 400))
    wrong_type = client.post(ITEMS, "product=x", content_type="text/plain")
    assert wrong_type.status_code == 415
    jsonschema.validate(wrong_type.json(), answer_schema(schema, ITEMS, "post", 415))
    basket = client.get("/api/basket")
    jsonschema.validate(basket.json(), answer_schema(schema, "/api/basket", "get", 200))


def test_monolith_buy_now_refuses_a_body_not_sent_as_json_and_places_nothing(client, rod):
    body = {
        "quantity": 1,
        "customer": {"name": "Ada Angler", "email": "ada@example.com"},
        "payment": {"card_number": "4242424242424242"},
    }
    response = client.post(
        f"/shop/rods/{rod.slug}/orders", json.dumps(body), content_type="text/plain", HTTP_IDEMPOTENCY_KEY="key-1"
    )
    assert response.status_code == 415
    assert response.json() == {
        "error": "unsupported_media_type",
        "detail": "Send the body as application/json.",
        "fields": {"content_type": ["Send application/json."]},
    }
    assert PlacedOrder.objects.count() == 0
