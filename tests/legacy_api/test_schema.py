"""The OpenAPI schema that drf-spectacular generates for the legacy order API: every endpoint,
the bearer scheme, each answer, and the constraints the code enforces."""

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


def test_schema_declares_the_bearer_scheme_on_every_operation(schema):
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert operations
    assert all(op.get("security") == [{"bearerAuth": []}] for op in operations)
    assert all("401" in op["responses"] for op in operations)
    assert {"403"} <= set(schema["paths"]["/legacy-api/stats"]["get"]["responses"])


def test_schema_declares_403_where_a_callers_token_may_be_refused(schema):
    """Placing and looking up orders (not the merchant's), every hold operation (the hot path's
    alone), and the merchant's figures and receipts; reading an order or stock refuses no caller."""
    paths = schema["paths"]
    refusing = {
        ("/legacy-api/orders", "post"),
        ("/legacy-api/orders/lookup", "get"),
        ("/legacy-api/holds", "get"),
        ("/legacy-api/holds", "post"),
        ("/legacy-api/holds/{reference}", "get"),
        ("/legacy-api/holds/{reference}", "patch"),
        ("/legacy-api/holds/{reference}", "delete"),
        ("/legacy-api/stats", "get"),
        ("/legacy-api/stats/reset", "post"),
        ("/legacy-api/stock/{product}/receipts", "post"),
    }
    declared = {
        (path, method) for path, item in paths.items() for method, op in item.items() if "403" in op["responses"]
    }
    assert declared == refusing


def test_schema_names_the_holds_and_stock_endpoints(schema):
    assert {"post"} <= set(schema["paths"]["/legacy-api/holds"])
    assert {"get", "patch", "delete"} <= set(schema["paths"]["/legacy-api/holds/{reference}"])
    assert "get" in schema["paths"]["/legacy-api/stock/{product}"]
    assert {"200", "201", "400", "409", "422"} <= set(schema["paths"]["/legacy-api/holds"]["post"]["responses"])
    components = schema["components"]["schemas"]
    assert set(components["Stock"]["required"]) == {"product", "on_hand", "held", "available"}
    assert set(components["HoldRequest"]["required"]) == {"reference", "product", "quantity"}


def test_schema_states_the_limits_the_code_enforces(schema):
    components = schema["components"]["schemas"]
    place = schema["paths"]["/legacy-api/orders"]["post"]
    assert {"405", "422"} <= set(place["responses"])
    quantity = components["LineRequest"]["properties"]["quantity"]
    assert (quantity["minimum"], quantity["maximum"]) == (1, 1000)
    order = components["OrderRequest"]["properties"]
    assert order["lines"]["minItems"] == 1
    assert order["lines"]["maxItems"] == 50
    assert order["reference"]["maxLength"] == 64 and order["reference"]["pattern"]
    assert order["hold"]["nullable"] is True
    hold_quantity = components["HoldRequest"]["properties"]["quantity"]
    assert (hold_quantity["minimum"], hold_quantity["maximum"]) == (1, 1_000_000)
    assert components["PatchedHoldResize"]["properties"]["quantity"]["minimum"] == 0
    assert "hold" in components["Order"]["properties"]


def test_schema_is_refused_without_a_token_in_json(anonymous_client):
    response = anonymous_client.get("/legacy-api/schema")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
