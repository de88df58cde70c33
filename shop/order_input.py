"""Validation of a hot-path order request: the Idempotency-Key header and the JSON body."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

IDEMPOTENCY_KEY_MAX = 255


class InvalidInput(Exception):
    """Bad input: `fields` maps each offending field to what is wrong with it."""

    def __init__(self, fields: dict[str, str]):
        super().__init__(", ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class OrderInput:
    quantity: int
    name: str
    email: str
    card_number: str

    def fingerprint(self, *, product_slug: str) -> str:
        """A keyed hash of what was asked, so a replay can be compared without storing the body
        (a plain hash of a card number could be brute-forced)."""
        canonical = json.dumps(
            [product_slug, self.quantity, self.name, self.email.lower(), self.card_number], separators=(",", ":")
        )
        return hmac.new(settings.SECRET_KEY.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def idempotency_key_parse(value: str | None) -> str:
    if value is None or not value.strip():
        raise InvalidInput({"Idempotency-Key": "This header is required (a fresh random value per order)."})
    value = value.strip()
    if len(value) > IDEMPOTENCY_KEY_MAX:
        raise InvalidInput({"Idempotency-Key": f"At most {IDEMPOTENCY_KEY_MAX} characters."})
    if not value.isascii() or not value.isprintable():
        raise InvalidInput({"Idempotency-Key": "Printable ASCII characters only."})
    return value


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def order_input_parse(raw: bytes, *, per_order_limit: int | None = None) -> OrderInput:
    """Parses the body `{"quantity", "customer": {"name", "email"}, "payment": {"card_number"}}`;
    raises InvalidInput naming every bad field."""
    try:
        body = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidInput({"body": "Send a JSON object."})
    if not isinstance(body, dict):
        raise InvalidInput({"body": "Send a JSON object."})
    errors: dict[str, str] = {}

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
    elif not name.isprintable():
        errors["customer.name"] = "Letters, digits and punctuation only."
    email = customer.get("email")
    if not isinstance(email, str) or not email.strip():
        errors.setdefault("customer.email", "Your email address is required.")
    elif len(email.strip()) > 254:
        errors["customer.email"] = "At most 254 characters."
    else:
        try:
            validate_email(email.strip())
        except ValidationError:
            errors["customer.email"] = "Enter a valid email address."

    payment = body.get("payment")
    if not isinstance(payment, dict):
        errors["payment"] = "An object with card_number is required."
        payment = {}
    card = payment.get("card_number")
    if not isinstance(card, str | int) or isinstance(card, bool):
        errors.setdefault("payment.card_number", "A card number is required.")
    else:
        digits = str(card).replace(" ", "").replace("-", "")
        # isdigit() alone admits superscripts and other scripts' digits.
        if not (digits.isascii() and digits.isdigit()) or not 12 <= len(digits) <= 19 or not _luhn_ok(digits):
            errors["payment.card_number"] = "Enter a valid card number."

    if errors:
        raise InvalidInput(errors)
    return OrderInput(
        quantity=quantity,
        name=name.strip(),
        email=email.strip(),
        card_number=str(card).replace(" ", "").replace("-", ""),
    )
