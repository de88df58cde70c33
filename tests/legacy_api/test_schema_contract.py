"""The legacy API's schema states what its validation enforces: the card number's pattern, and
names and emails that may not be blank; a value the pattern refuses is refused by the API."""

import re

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def components(client) -> dict:
    response = client.get("/legacy-api/schema", {"format": "json"})
    assert response.status_code == 200
    return response.json()["components"]["schemas"]


def test_schema_states_the_card_pattern_and_non_blank_customer(components):
    card = components["Payment"]["properties"]["card_number"]
    assert card["type"] == "string" and card["pattern"]
    # The limit on length applies after trimming, which a schema cannot say: it is not stated.
    assert "maxLength" not in card
    customer = components["Customer"]["properties"]
    assert customer["name"]["minLength"] == 1 and customer["email"]["minLength"] == 1


@pytest.mark.parametrize(
    ("card", "matches"),
    [
        ("4242424242424242", True),
        (" 4242-4242-4242-4242 ", True),
        ("4242 4242 4242 4242", True),
        ("42424242424", False),  # 11 digits
        ("4242x4242424242424242", False),
        ("42424242424242424242", False),  # 20 digits
    ],
)
def test_card_pattern_agrees_with_the_api(components, card, matches):
    from legacy_api.serializers import PaymentSerializer

    pattern = components["Payment"]["properties"]["card_number"]["pattern"]
    assert bool(re.search(pattern, card)) is matches
    # Luhn's check is the one rule the pattern leaves to the API.
    if not matches:
        assert not PaymentSerializer(data={"card_number": card}).is_valid()


def test_card_padded_past_40_characters_is_taken_and_41_after_trimming_is_not():
    from legacy_api.serializers import PaymentSerializer

    padded = "   " + "4242-4242-4242-4242" + " " * 25
    assert PaymentSerializer(data={"card_number": padded}).is_valid()
    too_long = "4242-" + "-" * 20 + "4242-4242-4242"
    too_long = too_long + "-" * (41 - len(too_long))
    serializer = PaymentSerializer(data={"card_number": too_long})
    assert not serializer.is_valid()
    assert "no more than 40" in str(serializer.errors["card_number"][0])


def test_a_receipt_for_a_path_that_names_no_product_is_a_404_the_schema_lists(client):
    """`stock/{product}` takes a slug: any other text there is answered by the API's own 404,
    which the operations on that path must list (a client built from the schema meets it)."""
    paths = client.get("/legacy-api/schema", {"format": "json"}).json()["paths"]

    response = client.post("/legacy-api/stock/%C2%AB%1B/receipts", {}, content_type="application/json")

    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert "404" in paths["/legacy-api/stock/{product}/receipts"]["post"]["responses"]
    assert "404" in paths["/legacy-api/stock/{product}"]["get"]["responses"]
