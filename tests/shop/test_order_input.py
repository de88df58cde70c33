"""The shared order-body parse (shop.order_input) against the legacy API's own validation: what
the shop accepts, the legacy API must accept too, or a buyer's bad input is refused only after
the shop has written a failed checkout (the monolith) or held stock (the hot path)."""

from __future__ import annotations

import json

import pytest

from legacy_api.serializers import OrderRequestSerializer
from legacy_client import reference_for_key
from shop.order_input import InvalidInput, order_input_parse


def body(*, name="Ann Angler", email="ann@example.com", card="4242424242424242", quantity=1) -> dict:
    return {"quantity": quantity, "customer": {"name": name, "email": email}, "payment": {"card_number": card}}


def parse(data: dict):
    return order_input_parse(json.dumps(data).encode(), per_order_limit=99)


@pytest.mark.parametrize(
    "email",
    [
        "al@exa\ud800mple.com",
        "al@example.com\ud800",
        "al@example.\udc00com",
        "al@\udbff\udbffexample.com",
        "al@exa\ue000mple.com",  # private use
        "al@exa\u2028mple.com",  # line separator
        "al@exa\u0378mple.com",  # unassigned
    ],
)
def test_an_email_holding_what_no_address_holds_is_refused_naming_it(email):
    with pytest.raises(InvalidInput) as caught:
        parse(body(email=email))
    assert caught.value.fields == {"customer.email": ["Enter a valid email address."]}


@pytest.mark.parametrize("email", ["al@bücher.de", "al@例え.jp", "al@localhost", "al@[192.0.2.1]", " al@example.com "])
def test_real_addresses_are_still_accepted(email):
    assert parse(body(email=email)).email == email.strip()


EMAILS = [
    "al@exa\ud800mple.com",
    "al@example.com\ud800",
    "\ud800@example.com",
    "al@exa\x00mple.com",
    "al@exa\u2028mple.com",
    "al@exa\ufffemple.com",
    "al@exa\u200dmple.com",
    "al@bücher.de",
    '"a b"@example.com',
    "al@localhost",
    "al@[192.0.2.1]",
    "al@example.com\n",
    "a" * 242 + "@example.com",
    "a" * 243 + "@example.com",
    " " + "a" * 242 + "@example.com ",
]
NAMES = ["Ann\ud800", "\udfff", "Ann\x00", "Ann\x7f", "x" * 200, "x" * 201, " " + "x" * 200 + "\t", "\u3000"]
CARDS = [
    "4242 4242 4242 4242",
    "4242-4242-4242-4242",
    "4242\u00a04242\u00a04242\u00a04242",
    "4242424242424242\ud800",
    "4242\t4242 4242 4242",
    " 4242424242424242 ",
    "4242 " * 3 + "4242" + " " * 30,
    "4" + "-" * 40 + "242424242424242",
]
CANDIDATES = [("email", v) for v in EMAILS] + [("name", v) for v in NAMES] + [("card", v) for v in CARDS]


@pytest.mark.parametrize(("field", "value"), CANDIDATES, ids=[f"{f}={v!r}"[:40] for f, v in CANDIDATES])
def test_what_the_shop_accepts_the_legacy_api_accepts(field, value):
    try:
        parsed = parse(body(**{field: value}))
    except InvalidInput:
        return
    sent = {
        "reference": reference_for_key("ann-1"),
        "customer": {"name": parsed.name, "email": parsed.email},
        "lines": [{"product": "muskie-casting-rod", "quantity": parsed.quantity}],
        "payment": {"card_number": parsed.card_number},
    }
    serializer = OrderRequestSerializer(data=json.loads(json.dumps(sent)))
    assert serializer.is_valid(), serializer.errors
