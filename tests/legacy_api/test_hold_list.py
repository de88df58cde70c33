"""GET /legacy-api/holds: the hot path lists its own holds (never another caller's), oldest first,
narrowed by status and product; a bad filter is a 400 naming it, no token is a 401, and any other
caller's token a 403."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from legacy_api import selectors
from legacy_api.holds import hold_create

pytestmark = pytest.mark.django_db

HOLDS_URL = "/legacy-api/holds"


def take(client: Client, reference: str, *, product: str = "muskie-casting-rod", quantity: int = 1) -> None:
    body = {"reference": reference, "product": product, "quantity": quantity}
    response = client.post(HOLDS_URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content


def listed(client: Client, **query) -> list[tuple[str, str, int, str]]:
    response = client.get(HOLDS_URL, query)
    assert response.status_code == 200, response.content
    return [(h["reference"], h["product"], h["quantity"], h["status"]) for h in response.json()["results"]]


def test_the_hot_path_lists_its_own_holds_oldest_first_and_never_another_callers(
    hotpath_client, muskie_rod, tourney_rod
):
    take(hotpath_client, "sale-1", quantity=3)
    # Another caller's, under the same reference: taken in-process, as none but the hot path's
    # token takes one over HTTP.
    hold_create(reference="sale-1", product="muskie-casting-rod", quantity=2, caller="storefront")
    take(hotpath_client, "sale-2", product="tourney-casting-rod", quantity=4)

    assert listed(hotpath_client) == [
        ("sale-1", "muskie-casting-rod", 3, "open"),
        ("sale-2", "tourney-casting-rod", 4, "open"),
    ]


@pytest.mark.parametrize("other", ["client", "merchant_client"])
def test_listing_with_any_other_callers_token_is_403(request, hotpath_client, muskie_rod, other):
    take(hotpath_client, "sale-1")

    response = request.getfixturevalue(other).get(HOLDS_URL)

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert "results" not in response.json()


def test_the_list_answers_in_the_hold_shape(hotpath_client, muskie_rod):
    take(hotpath_client, "sale-1", quantity=3)

    (hold,) = hotpath_client.get(HOLDS_URL).json()["results"]

    assert set(hold) == {"reference", "product", "quantity", "requested", "status", "created_at", "updated_at"}


def test_status_and_product_narrow_the_list(hotpath_client, muskie_rod, tourney_rod):
    take(hotpath_client, "sale-1")
    take(hotpath_client, "sale-2")
    take(hotpath_client, "sale-3", product="tourney-casting-rod")
    assert hotpath_client.delete(f"{HOLDS_URL}/sale-2").status_code == 200

    assert [h[0] for h in listed(hotpath_client)] == ["sale-1", "sale-2", "sale-3"]
    assert [h[0] for h in listed(hotpath_client, status="open")] == ["sale-1", "sale-3"]
    assert listed(hotpath_client, status="released") == [("sale-2", "muskie-casting-rod", 0, "released")]
    assert [h[0] for h in listed(hotpath_client, status="open", product="muskie-casting-rod")] == ["sale-1"]
    assert listed(hotpath_client, product="no-such-product") == []


def test_the_list_is_bounded(hotpath_client, muskie_rod, monkeypatch):
    monkeypatch.setattr(selectors, "HOLDS_LISTED_MAX", 2)
    for number in range(3):
        take(hotpath_client, f"sale-{number}")

    assert [h[0] for h in listed(hotpath_client)] == ["sale-0", "sale-1"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"status": ""}, "status"),
        ({"product": "not a slug"}, "product"),
        ({"product": ""}, "product"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(hotpath_client, muskie_rod, query, field):
    response = hotpath_client.get(HOLDS_URL, query)

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid" and list(body["fields"]) == [field]


def test_listing_without_a_token_is_401(anonymous_client, hotpath_client, muskie_rod):
    take(hotpath_client, "sale-1")

    response = anonymous_client.get(HOLDS_URL)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert "results" not in response.json()


def test_the_schema_describes_the_list_its_filters_and_its_bound(client):
    schema = client.get("/legacy-api/schema", {"format": "json"}).json()

    listing = schema["paths"]["/legacy-api/holds"]["get"]
    assert listing["operationId"] == "hold_list"
    assert {p["name"]: p["in"] for p in listing["parameters"]} == {"status": "query", "product": "query"}
    (status,) = [p for p in listing["parameters"] if p["name"] == "status"]
    assert set(status["schema"]["enum"]) == {"open", "released"}
    assert {"200", "400", "401", "403"} <= set(listing["responses"])
    assert f"at most {selectors.HOLDS_LISTED_MAX}" in listing["description"]
