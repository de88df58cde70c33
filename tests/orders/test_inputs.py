"""Validation of hot-path order requests: the Idempotency-Key header and the body."""

import json

import pytest

from orders.inputs import InvalidInput, idempotency_key_parse, order_input_parse
from tests.orders.conftest import APPROVED_CARD, order_body


def parse(body, **kwargs):
    return order_input_parse(json.dumps(body).encode(), **kwargs)


def test_idempotency_key_is_required_and_bounded():
    assert idempotency_key_parse("  abc-123 ") == "abc-123"
    assert idempotency_key_parse("k" * 255) == "k" * 255
    for bad in (None, "", "   ", "k" * 256, "clé", "a\tb"):
        with pytest.raises(InvalidInput) as caught:
            idempotency_key_parse(bad)
        assert "Idempotency-Key" in caught.value.fields


def test_valid_body_is_parsed_and_card_spaces_dropped():
    body = order_body(quantity=2, email="ann@example.com")
    body["payment"]["card_number"] = "4242 4242 4242 4242"
    parsed = parse(body, per_order_limit=2)
    assert (parsed.quantity, parsed.name, parsed.email, parsed.card_number) == (
        2,
        "Ann Angler",
        "ann@example.com",
        APPROVED_CARD,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.update(quantity=0), "quantity"),
        (lambda b: b.update(quantity="1"), "quantity"),
        (lambda b: b.update(quantity=True), "quantity"),
        (lambda b: b.update(quantity=3), "quantity"),
        (lambda b: b.pop("customer"), "customer"),
        (lambda b: b["customer"].update(name=" "), "customer.name"),
        (lambda b: b["customer"].update(name="x" * 201), "customer.name"),
        (lambda b: b["customer"].update(email="not-an-email"), "customer.email"),
        (lambda b: b["customer"].pop("email"), "customer.email"),
        (lambda b: b.update(payment="4242"), "payment"),
        (lambda b: b["payment"].update(card_number="4242424242424241"), "payment.card_number"),
        (lambda b: b["payment"].update(card_number="42"), "payment.card_number"),
        (lambda b: b["payment"].update(card_number=None), "payment.card_number"),
        # A JSON number is not a card number (its leading zeros would be lost): the schema says string.
        (lambda b: b["payment"].update(card_number=4242424242424242), "payment.card_number"),
    ],
)
def test_bad_body_names_the_field(change, field):
    body = order_body()
    change(body)
    with pytest.raises(InvalidInput) as caught:
        parse(body, per_order_limit=2)
    assert field in caught.value.fields
    assert all(isinstance(messages, list) and messages for messages in caught.value.fields.values())


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_body_that_is_not_a_json_object_is_refused(raw):
    with pytest.raises(InvalidInput) as caught:
        order_input_parse(raw)
    assert "body" in caught.value.fields


def test_fingerprint_tells_bodies_apart_and_hides_the_card():
    first = parse(order_body(email="ann@example.com"))
    same = parse(order_body(email="ANN@example.com"))
    other = parse(order_body(email="ann@example.com", quantity=2))
    fingerprint = first.fingerprint(product_slug="muskie-casting-rod")
    assert fingerprint == same.fingerprint(product_slug="muskie-casting-rod")
    assert fingerprint != other.fingerprint(product_slug="muskie-casting-rod")
    assert fingerprint != first.fingerprint(product_slug="tourney-casting-rod")
    assert APPROVED_CARD not in fingerprint and len(fingerprint) == 64


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["payment"].update(card_number="424242424242424\u00b2"), "payment.card_number"),
        (lambda b: b["payment"].update(card_number="\u0664\u0662" * 8), "payment.card_number"),
        (lambda b: b["customer"].update(email="a" * 250 + "@example.com"), "customer.email"),
        (lambda b: b["customer"].update(name="Ann\x00Angler"), "customer.name"),
    ],
)
def test_input_the_legacy_api_or_the_database_would_refuse_is_refused_here(change, field):
    """Accepted here, such an order would only fail later, in a worker, holding stock."""
    body = order_body()
    change(body)
    with pytest.raises(InvalidInput) as caught:
        parse(body)
    assert field in caught.value.fields


def test_json_nested_too_deeply_is_a_bad_body_not_a_crash():
    with pytest.raises(InvalidInput) as caught:
        order_input_parse(b"[" * 100_000)
    assert "body" in caught.value.fields


@pytest.mark.parametrize(
    "name",
    [
        "می\u200cخواهم",  # Persian, with a zero-width non-joiner
        "क्\u200dष",  # Devanagari, with a zero-width joiner
        "Ann O'Angler-Smith",
        "Zoë Ångström",
        "\u05d3\u05e0\u05d4 \u200f3",  # Hebrew, with a right-to-left mark before a digit
        "\u0645\u0631\u064a\u0645 \u061c3",  # Arabic, with an Arabic letter mark before a digit
    ],
)
def test_names_written_with_joiners_are_accepted(name):
    body = order_body()
    body["customer"]["name"] = name
    assert parse(body, per_order_limit=2).name == name


@pytest.mark.parametrize(
    "name",
    [
        "Ann\x07Angler",
        "Ann\nAngler",
        "Ann\u2028Angler",
        "Ann\ue000Angler",
        "Ann \u202erelgnA",  # a right-to-left override: shown as "Ann Angler" reversed after it
        "Ann \u2067Angler\u2069",  # a right-to-left isolate
        "Ann\u200bAngler",  # a zero-width space
        "\ufeffAnn Angler",  # a byte order mark
    ],
)
def test_names_with_control_or_separator_characters_are_refused(name):
    body = order_body()
    body["customer"]["name"] = name
    with pytest.raises(InvalidInput) as caught:
        parse(body, per_order_limit=2)
    assert "customer.name" in caught.value.fields


@pytest.mark.parametrize(
    ("forwarded", "hops", "expected"),
    [
        ("203.0.113.9", 1, "203.0.113.9"),
        ("198.51.100.1, 203.0.113.9", 1, "203.0.113.9"),
        ("198.51.100.1, 203.0.113.9", 2, "198.51.100.1"),
        ("198.51.100.1, 203.0.113.9", 5, "198.51.100.1"),
        ("not-an-address, 203.0.113.9", 2, "10.0.0.1"),  # the client's entry: the connection counts
        ("", 1, "10.0.0.1"),
        (", ".join(["192.0.2.1"] * 60 + ["203.0.113.9"]), 1, "203.0.113.9"),  # long: parsed, not kept
        (", ".join(["192.0.2.1"] * 60 + ["junk"]), 1, "10.0.0.1"),
    ],
)
def test_the_client_address_is_the_one_the_nearest_trusted_proxy_saw(settings, rf, forwarded, hops, expected):
    from orders.inputs import client_ip

    settings.ORDERS_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.ORDERS_TRUSTED_PROXY_HOPS = hops
    request = rf.post("/", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="10.0.0.1")
    assert client_ip(request) == expected
    assert client_ip(request) == expected  # the second answer, from the kept parse, is the same
