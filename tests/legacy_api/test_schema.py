"""The OpenAPI schema that drf-spectacular generates for the legacy order API."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client) -> dict:
    response = client.get("/legacy-api/schema", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_names_the_order_endpoints(schema):
    assert schema["info"]["title"] == "Legacy order API"
    assert "post" in schema["paths"]["/legacy-api/orders"]
    assert "get" in schema["paths"]["/legacy-api/orders/{order_id}"]
    assert "get" in schema["paths"]["/legacy-api/stats"]
    assert "post" in schema["paths"]["/legacy-api/stats/reset"]


def test_schema_describes_the_order_request_and_every_answer(schema):
    place = schema["paths"]["/legacy-api/orders"]["post"]
    assert place["operationId"] == "order_place"
    request = place["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert request.endswith("/OrderRequest")
    assert {"200", "201", "400", "402", "409", "413", "415", "503"} <= set(place["responses"])

    components = schema["components"]["schemas"]
    assert set(components["OrderRequest"]["required"]) == {"reference", "customer", "lines", "payment"}
    assert {"id", "number", "reference", "status", "total_cents", "lines"} <= set(components["Order"]["properties"])
    quantity = components["LineRequest"]["properties"]["quantity"]
    assert (quantity["type"], quantity["minimum"]) == ("integer", 1)
