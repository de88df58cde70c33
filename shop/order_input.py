"""The one order-body contract of a buy-now request, whichever origin takes it: the
Idempotency-Key header, the JSON body, the request's fingerprint, the buyer's address and the
error shape. The monolith (shop.api) and the hot path (orders.views) both parse with it, so
the same key and body get the same verdict on either side of the edge."""

from __future__ import annotations

import contextlib
import functools
import hmac
import ipaddress
import json
import re
import string
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.http import HttpRequest
from django.utils.encoding import punycode

from config.headers import request_header
from shop.card_numbers import luhn_valid
from shop.fingerprints import order_fingerprint, order_fingerprint_before

IDEMPOTENCY_KEY_MAX = 255


class InvalidInput(Exception):
    """Bad input: `fields` maps each offending field to the list of what is wrong with it,
    the one error shape of every API here (`{name: [messages]}`); a lone message is listed."""

    def __init__(self, fields: dict[str, str | list[str]]):
        self.fields = {
            name: [messages] if isinstance(messages, str) else list(messages) for name, messages in fields.items()
        }
        super().__init__(", ".join(f"{k}: {' '.join(v)}" for k, v in self.fields.items()))

    status = 400
    error = "invalid"
    detail = "Please correct the fields named."

    def payload(self) -> dict:
        """The answer's body on both origins: `{"error", "detail", "fields"}`."""
        return {"error": self.error, "detail": self.detail, "fields": self.fields}


class UnsupportedMediaType(InvalidInput):
    """A body not declared as JSON: 415, as the basket and legacy APIs answer it."""

    status = 415
    error = "unsupported_media_type"
    detail = "Send the body as application/json."


def json_body_check(request: HttpRequest) -> None:
    """Raises UnsupportedMediaType unless the request says its body is JSON (a charset may follow)."""
    if (request.content_type or "").lower() != "application/json":
        raise UnsupportedMediaType({"content_type": "Send application/json."})


# The answer to a key sent again with another body, on both origins (422).
KEY_REUSED_DETAIL = "This Idempotency-Key was used for another order; use a fresh key."


@dataclass(frozen=True)
class OrderInput:
    quantity: int
    name: str
    email: str
    card_number: str

    def fingerprint(self, *, product_slug: str) -> str:
        """A keyed hash of what was asked, with no more of the card than its last four digits
        (shop.fingerprints), so a replay can be compared without storing the body."""
        fields = {"quantity": self.quantity, "name": self.name, "email": self.email}
        return order_fingerprint(product_slug=product_slug, card_last4=self.card_number[-4:], **fields)

    def fingerprint_matches(self, stored: str, *, product_slug: str) -> bool:
        """Whether `stored` is this body's fingerprint, or, on a row not renewed yet, the card-wide
        one of the releases before (shop.fingerprints.order_fingerprint_before)."""
        if hmac.compare_digest(stored, self.fingerprint(product_slug=product_slug)):
            return True
        fields = {"quantity": self.quantity, "name": self.name, "email": self.email}
        before = order_fingerprint_before(product_slug=product_slug, card_number=self.card_number, **fields)
        return bool(stored) and hmac.compare_digest(stored, before)


# What a person's name, a postal address or an email's domain never holds: control characters,
# surrogates, private-use and unassigned code points, line and paragraph separators, and the
# invisible format characters. A lone surrogate cannot even be encoded (hashed, sent, stored); a
# right-to-left override (U+202E) or isolate shows the text after it reversed or moved in the
# merchant's admin and in emails, and a zero-width space hides inside a name. Of the format
# characters only these stay: the zero-width non-joiner and joiner (U+200C, U+200D), part of how
# Persian and Indic names are written; the left-to-right, right-to-left and Arabic letter marks
# (U+200E, U+200F, U+061C), which a keyboard for Hebrew or Arabic types around digits and Latin
# letters; and the Mongolian vowel separator (U+180E).
_NOT_IN_A_NAME = {"Cc", "Cs", "Co", "Cn", "Zl", "Zp", "Cf"}
_FORMAT_IN_A_NAME = frozenset("\u200c\u200d\u200e\u200f\u061c\u180e")
_NOT_IN_A_DOMAIN = _NOT_IN_A_NAME - {"Cf"}


def text_is_clean(text: str, *, format_characters: bool = False) -> bool:
    """The one rule for free text a person writes (a name, an address's lines, a city), on
    every origin and form that takes some. `format_characters`: every invisible format
    character allowed, as the legacy order API takes them (the backend keeps its rule: orders
    the shop accepted under an earlier one must still be placed there)."""
    return _clean(text, _NOT_IN_A_DOMAIN if format_characters else _NOT_IN_A_NAME)


def _clean(text: str, refused: set[str]) -> bool:
    if text.isascii() and text.isprintable():  # letters, digits, punctuation and spaces only
        return True
    return not any(unicodedata.category(char) in refused and char not in _FORMAT_IN_A_NAME for char in text)


def idempotency_key_parse(value: str | None) -> str:
    if value is None or not value.strip():
        raise InvalidInput({"Idempotency-Key": "This header is required (a fresh random value per order)."})
    value = value.strip()
    if len(value) > IDEMPOTENCY_KEY_MAX:
        raise InvalidInput({"Idempotency-Key": f"At most {IDEMPOTENCY_KEY_MAX} characters."})
    if not value.isascii() or not value.isprintable():
        raise InvalidInput({"Idempotency-Key": "Printable ASCII characters only."})
    return value


# The longest address mail can be sent to (RFC 5321's path, less its angle brackets), counted
# as it is sent: a domain in another script travels IDNA-encoded, which makes it longer.
EMAIL_MAX_LENGTH = 254

# What no email address holds, anywhere in it: control and format characters, surrogates,
# private-use and unassigned code points. Django's check takes them in a quoted local part
# (`"\x0b"@example.com`) and as letters of a domain; there a zero-width space or a soft hyphen
# is invisible, and the domain's encoding for sending drops it, so `ann@exa\u200bmple.com` would
# be stored as another address than the one its mail reaches.
_NOT_IN_AN_EMAIL = {"Cc", "Cf", "Cs", "Co", "Cn"}
EMAIL_HIDDEN_CHARACTER = "Enter a valid email address, without invisible or control characters."
EMAIL_TOO_LONG = f"Enter a valid email address of at most {EMAIL_MAX_LENGTH} characters."
# RFC 5321's limit on the part before the @, in octets: mail servers refuse a longer one.
EMAIL_LOCAL_MAX_OCTETS = 64
EMAIL_LOCAL_TOO_LONG = (
    f"Enter a valid email address: the part before the @ has at most {EMAIL_LOCAL_MAX_OCTETS} characters."
)


class _EmailValidator(EmailValidator):
    """Django's email validation, with each domain's verdict kept (a sale's buyers write the
    same few domains), and no character an address never holds, on every origin and form."""

    # Django's own pattern, compiled here: its lazily compiled one costs a proxy's lookups on
    # every match, a third of the check (a sold-out stampede checks every buyer's address).
    user_regex = re.compile(EmailValidator.user_regex.pattern, EmailValidator.user_regex.flags)

    def __call__(self, value: str) -> None:
        super().__call__(value)
        plain = value.isascii() and value.isprintable()
        if not plain and any(unicodedata.category(char) in _NOT_IN_AN_EMAIL for char in value):
            raise ValidationError(EMAIL_HIDDEN_CHARACTER, code="invalid")
        # Printable ASCII that passed Django's check is as long as its key (email_key only
        # lower-cases its letters), and each of its characters one octet.
        if (len(value) if plain else len(email_key(value))) > EMAIL_MAX_LENGTH:
            raise ValidationError(EMAIL_TOO_LONG, code="invalid")
        local = value.rpartition("@")[0]
        if (len(local) if plain else len(local.encode())) > EMAIL_LOCAL_MAX_OCTETS:
            raise ValidationError(EMAIL_LOCAL_TOO_LONG, code="invalid")

    def validate_domain_part(self, domain_part: str) -> bool:
        return _domain_ok(domain_part)


@functools.lru_cache(maxsize=4096)
def _domain_ok(domain_part: str) -> bool:
    # An address literal (`a@[10.0.0.5]`, `a@[IPv6:::1]`) names no mailbox a buyer has: it would
    # only have the shop's mail server connect to an address the sender chose, inside or out.
    if domain_part.startswith("["):
        return False
    # Django's pattern takes any code point from U+00A1 up as a letter, lone surrogates included:
    # the legacy API refuses those, and the hot path could not hash them for its throttle.
    # (Format characters are left to the address's own check, which names them.)
    if not (_clean(domain_part, _NOT_IN_A_DOMAIN) and EmailValidator().validate_domain_part(domain_part)):
        return False
    if domain_part.isascii():
        return True
    # A domain in another script travels IDNA-encoded, which folds some characters into spaces
    # or punctuation (a thin space, a full-width `@`, a diaeresis's own space): what it encodes
    # to must itself be a host name, so that the address the shop keeps (email_key) is the one
    # its mail reaches.
    try:
        encoded = punycode(domain_part)
    except UnicodeError:
        return False
    return bool(_HOST_NAME.fullmatch(encoded))


validate_email = _EmailValidator()

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
# A host name as mail is sent to it: labels of letters, digits and hyphens, none at either end.
_HOST_NAME = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE
)


def email_key(email: str) -> str:
    """The one form in which the shop compares email addresses (finding orders by email,
    verified addresses, the throttles): two addresses are the same when their keys are equal.

    The domain as mail is sent to it (IDNA-encoded as Django encodes it for sending, which
    folds its case and width and drops what the encoding ignores), lower-cased; the local part
    with its ASCII letters lower-cased and nothing else changed. A database's case-insensitive
    comparison (PostgreSQL's UPPER() behind `iexact`) is not this: it takes `ı` (dotless i),
    `ſ` (long s) or the Kelvin sign for ASCII letters, so `bob@gmaıl.com`, another domain,
    would match `bob@gmail.com`. Use `iexact` only to narrow, and this to decide."""
    local, at, domain = (email or "").strip().rpartition("@")
    if not at:
        return domain.translate(_ASCII_LOWER)
    return f"{local.translate(_ASCII_LOWER)}@{_domain_key(domain)}"


@functools.lru_cache(maxsize=4096)
def mailbox_key(email: str) -> str:
    """The mailbox an address reaches, for the limits on what is sent or tried per person: its
    key (email_key) without a `+tag` in the local part, so that ann+1@, ann+2@... are one inbox.
    Quoted spellings ("victim"@, "v\\ictim"@) are the same inbox too. For counting only: an
    address is kept, and compared, as email_key says. Kept for the last few thousand: an order's
    gate names the mailbox's counters twice (orders.throttle, shop.decline_throttle)."""
    local, at, domain = email_key(email).rpartition("@")
    if not at:
        return domain
    if len(local) >= 2 and local[0] == local[-1] == '"':
        # A quoted local part, its escapes undone: "v\ictim"@ is victim@ to the mail server.
        local = re.sub(r"\\(.)", r"\1", local[1:-1])
    return f"{local.split('+', 1)[0] or local}@{domain}"


@functools.lru_cache(maxsize=4096)
def _domain_key(domain: str) -> str:
    try:
        return punycode(domain).lower()
    except UnicodeError:  # not a domain mail could be sent to: compared as written
        return domain.translate(_ASCII_LOWER)


def email_spellings(email: str) -> list[str]:
    """How an address may have been written, its ASCII letters lower-cased, for a database to
    narrow rows to those holding it: as given, as its key, and with the key's domain in its own
    script. Each has the address's key; an address written otherwise (another script's case or
    width in the domain) is not among them."""
    key = email_key(email)
    if not key:
        return []
    spellings = {(email or "").strip().translate(_ASCII_LOWER), key}
    local, at, domain = key.rpartition("@")
    if at:
        with contextlib.suppress(UnicodeError):  # a domain mail cannot be sent to has no other script
            spellings.add(f"{local}@{domain.encode('ascii').decode('idna')}")
    return sorted(spellings)


def order_input_parse(raw: bytes, *, per_order_limit: int | None = None) -> OrderInput:
    """Parses the body `{"quantity", "customer": {"name", "email"}, "payment": {"card_number"}}`;
    raises InvalidInput naming every bad field."""
    try:
        body = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidInput({"body": "Send a JSON object."})
    if not isinstance(body, dict):
        raise InvalidInput({"body": "Send a JSON object."})
    errors: dict[str, str | list[str]] = {}

    quantity = body.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        errors["quantity"] = "A whole number is required."
    elif quantity < 1:
        errors["quantity"] = "At least 1."
    elif per_order_limit is not None and quantity > per_order_limit:
        errors["quantity"] = f"At most {per_order_limit} per order."

    customer = body.get("customer")
    if not isinstance(customer, dict):
        errors["customer"] = "An object with name and email is required."
        customer = {}
    name = customer.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.setdefault("customer.name", "Your name is required.")
    elif len(name.strip()) > 200:
        errors["customer.name"] = "At most 200 characters."
    elif not text_is_clean(name):
        errors["customer.name"] = "Letters, digits and punctuation only."
    email = customer.get("email")
    if not isinstance(email, str) or not email.strip():
        errors.setdefault("customer.email", "Your email address is required.")
    elif len(email.strip()) > 254:
        errors["customer.email"] = "At most 254 characters."
    else:
        try:
            validate_email(email.strip())
        except ValidationError as exc:
            errors["customer.email"] = exc.messages

    payment = body.get("payment")
    if not isinstance(payment, dict):
        errors["payment"] = "An object with card_number is required."
        payment = {}
    card = payment.get("card_number")
    # A string only: as a JSON number, a card's leading zeros and long numbers' digits are lost.
    if not isinstance(card, str):
        errors.setdefault("payment.card_number", "A card number is required, as a string of digits.")
    else:
        digits = card.replace(" ", "").replace("-", "")
        # isdigit() alone admits superscripts and other scripts' digits.
        if not (digits.isascii() and digits.isdigit()) or not 12 <= len(digits) <= 19 or not luhn_valid(digits):
            errors["payment.card_number"] = "Enter a valid card number."

    if errors:
        raise InvalidInput(errors)
    return OrderInput(
        quantity=quantity,
        name=name.strip(),
        email=email.strip(),
        card_number=card.replace(" ", "").replace("-", ""),
    )


def client_ip(request: HttpRequest) -> str | None:
    """The buyer's address, for throttles: behind our proxies (ORDERS_CLIENT_IP_HEADER) the one
    the nearest trusted proxy saw, else the connection's."""
    header = settings.ORDERS_CLIENT_IP_HEADER
    if header:
        value = request_header(request, header)
        hops = settings.ORDERS_TRUSTED_PROXY_HOPS
        parse = _trusted_hop if len(value) <= _KEPT_HEADER_LENGTH else _trusted_hop.__wrapped__
        candidate = parse(value, hops)
        if candidate is not None:
            return candidate
        # Not an address (a client's garbage where a proxy's entry was expected): the
        # connection's address counts instead; stored as an address, it would fail the insert.
    return request.META.get("REMOTE_ADDR") or None


@functools.lru_cache(maxsize=8192)
def client_network(address: str) -> str:
    """What the per-address throttles count an address as: an IPv4 address itself, an IPv6
    address's /64 (one subscriber's, or one machine's, whole network: a client given a /64 has
    more addresses in it than any limit could count one by one), or the IPv4 address an IPv6
    one is made from. Anything else as it is."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 4:
        return str(parsed)
    # Addresses made from one IPv4 address count as it: ::ffff:a.b.c.d, 6to4's 2002:a.b.c.d::/48
    # (65,536 /64s) and Teredo's, which carries its client's.
    embedded = parsed.ipv4_mapped or parsed.sixtofour or (parsed.teredo[1] if parsed.teredo else None)
    if embedded is not None:
        return str(embedded)
    # Written as its first address, so that it still reads as an address where one is stored.
    return str(ipaddress.ip_network(f"{parsed}/64", strict=False).network_address)


def client_ip_network(request: HttpRequest) -> str | None:
    """The client's address as the per-address limits count it (client_network): what the
    sign-in lockout (django-axes) keys on, so one IPv6 network is one client there too."""
    address = client_ip(request)
    return client_network(address) if address else None


# A stampede's buyers send the same few addresses again and again: their parse is kept, for
# headers no longer than a few proxies' entries (a client's long header is parsed each time).
_KEPT_HEADER_LENGTH = 160


@functools.lru_cache(maxsize=8192)
def _trusted_hop(value: str, hops: int) -> str | None:
    """The entry the nearest trusted proxy added to a forwarded-for header, if an address."""
    # Proxies append the address they saw, so only the entries our own proxies added can
    # be trusted: the first ones are whatever the client chose to send.
    entries = [h.strip() for h in value.split(",") if h.strip()]
    if entries and _is_ip(candidate := entries[-min(len(entries), hops)]):
        return candidate
    return None


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
