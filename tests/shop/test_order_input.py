"""The shared order-body parse (shop.order_input) against the legacy API's own validation: what
the shop accepts, the legacy API must accept too, or a buyer's bad input is refused only after
the shop has written a failed checkout (the monolith) or held stock (the hot path)."""

from __future__ import annotations

import json

import pytest

from legacy_api.serializers import OrderRequestSerializer
from legacy_client import reference_for_key
from shop.order_input import (
    EMAIL_HIDDEN_CHARACTER,
    EMAIL_LOCAL_TOO_LONG,
    InvalidInput,
    client_network,
    email_key,
    mailbox_key,
    order_input_parse,
)


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


@pytest.mark.parametrize("email", ["al@bücher.de", "al@例え.jp", "al@localhost", " al@example.com "])
def test_real_addresses_are_still_accepted(email):
    assert parse(body(email=email)).email == email.strip()


@pytest.mark.parametrize("email", ["al@[192.0.2.1]", "al@[127.0.0.1]", "al@[IPv6:::1]", "al@[IPv6:2001:db8::1]"])
def test_an_address_literal_is_refused_naming_the_email(email):
    """No buyer's mailbox is named so: the shop's mail would go to a server the sender chose."""
    with pytest.raises(InvalidInput) as caught:
        parse(body(email=email))
    assert caught.value.fields == {"customer.email": ["Enter a valid email address."]}


@pytest.mark.parametrize(
    "email",
    [
        '"\x0b"@example.com',  # control characters, which a quoted local part may hold for Django
        '"al\x1b[31m"@example.com',
        '"\x7f"@example.com',
        "al@exa\u200bmple.com",  # format characters: invisible, and dropped from the domain mail is sent to
        "al@exa\u00admple.com",
        "al@example.com\u2060",
        "al@\u200d\u200cexample.com",
        "al@exa\ufeffmple.com",
    ],
)
def test_an_email_holding_a_control_or_format_character_is_refused_saying_so(email):
    with pytest.raises(InvalidInput) as caught:
        parse(body(email=email))
    assert caught.value.fields == {"customer.email": [EMAIL_HIDDEN_CHARACTER]}


@pytest.mark.parametrize("email", ["al\u200d@example.com", "\u00adal@example.com", "a\x0bl@example.com"])
def test_such_a_character_in_an_unquoted_local_part_is_refused_too(email):
    with pytest.raises(InvalidInput) as caught:
        parse(body(email=email))
    assert list(caught.value.fields) == ["customer.email"]


def test_an_email_too_long_once_its_domain_is_encoded_for_sending_is_refused():
    domain = (
        ".".join(["\u00e4\u00f6\u00fc\u00e9\u00e8\u00ea\u00eb\u00ef\u00ee\u00f4\u00fb\u00e7\u00f1\u00e5"] * 9) + ".de"
    )
    room = 254 - len(email_key("@" + domain))  # what the local part may take
    longest = "a" * room + "@" + domain
    assert len(longest) < 254 - 30  # the domain is longer as sent than as written

    assert parse(body(email=longest)).email == longest
    with pytest.raises(InvalidInput) as caught:
        parse(body(email="a" + longest))
    assert list(caught.value.fields) == ["customer.email"]


def test_an_email_whose_part_before_the_at_passes_64_octets_is_refused_saying_so():
    assert parse(body(email="a" * 64 + "@example.com")).email == "a" * 64 + "@example.com"
    with pytest.raises(InvalidInput) as caught:
        parse(body(email="a" * 65 + "@example.com"))
    assert caught.value.fields == {"customer.email": [EMAIL_LOCAL_TOO_LONG]}


@pytest.mark.parametrize(
    ("email", "key"),
    [
        (" Al@Example.COM ", "al@example.com"),
        ("al@B\u00dcCHER.de", "al@xn--bcher-kva.de"),
        ("al@xn--bcher-kva.de", "al@xn--bcher-kva.de"),
        ("al@\uff45xample.com", "al@example.com"),  # full width
        ("al@exa\u034fmple.com", "al@example.com"),  # what the encoding for sending drops
        ("Al@[192.0.2.1]", "al@[192.0.2.1]"),
    ],
)
def test_spellings_mail_reaches_as_one_mailbox_have_its_key(email, key):
    assert email_key(email) == key


@pytest.mark.parametrize(
    ("email", "other"),
    [
        ("bob@gma\u0131l.com", "bob@gmail.com"),  # dotless i: xn--gmal-nza.com, another domain
        ("\u017fam@example.com", "sam@example.com"),  # long s
        ("\u212aim@example.com", "kim@example.com"),  # Kelvin sign
        ("\u0130da@example.com", "ida@example.com"),  # dotted capital I
        # Past ASCII, the local part's letters are compared as written: a mail server may tell
        # them apart, and folding them is what takes the letters above for ASCII ones.
        ("\u00c9mile@example.com", "\u00e9mile@example.com"),
    ],
)
def test_look_alike_addresses_have_keys_of_their_own(email, other):
    assert email_key(email) != email_key(other)


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


@pytest.mark.parametrize(
    "email",
    [
        "bob@ex\u2009ample.com",  # a thin space, which the domain's encoding turns into a space
        "bob@ex\u00a8ample.com",  # a diaeresis, encoded with a space of its own
        "bob@ex\uff20ample.com",  # a full-width @, encoded as an @
        "bob@a\uff1cb.com",  # a full-width <
        "bob@ex\u037eample.com",  # the Greek question mark, encoded as a semicolon
    ],
)
def test_a_domain_that_does_not_encode_to_a_host_name_is_refused(email):
    with pytest.raises(InvalidInput) as refused:
        parse(body(email=email))
    assert "customer.email" in refused.value.fields


@pytest.mark.parametrize(
    "email",
    ["ann@b\u00fccher.de", "Ann@B\u00dcCHER.de", "taro@\uff47\uff4d\uff41\uff49\uff4c.com", "bob@gma\u0131l.com"],
)
def test_an_accepted_address_is_kept_by_the_domain_its_mail_is_sent_to(email):
    from django.core.mail.message import sanitize_address

    parse(body(email=email))

    assert email_key(email).rpartition("@")[2] == sanitize_address(email, "utf-8").rpartition("@")[2]


@pytest.mark.parametrize(
    "address, counted_as",
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("2002:c000:0201:0001::1", "192.0.2.1"),  # 6to4: its /48 is one IPv4 address's
        ("2002:c000:0201:ffff::1", "192.0.2.1"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),  # Teredo: its client's
        ("not an address", "not an address"),
    ],
)
def test_the_per_address_throttles_count_an_ipv6_client_by_its_network(address, counted_as):
    assert client_network(address) == counted_as


@pytest.mark.parametrize(
    "email",
    [
        '"victim"@example.net',
        '"v\\ictim"@example.net',
        '"vi\\ctim"@Example.NET',
        '"victim+1"@example.net',
        "victim+2@example.net",
    ],
)
def test_every_spelling_of_one_inbox_is_one_mailbox(email):
    """A quoted local part and its backslash escapes name the same mailbox (RFC 5321 4.1.2)."""
    assert mailbox_key(email) == "victim@example.net"
