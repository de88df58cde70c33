"""A fake card authoriser with the usual test cards, standing in for the payment provider.

4242 4242 4242 4242 is approved and 4000 0000 0000 0002 is declined, as with Stripe's test
cards; the other decline cards below answer with their reason. Any other well-formed
(Luhn-valid) number is approved, so demo data and load tests can use their own numbers.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

APPROVED_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
DECLINES = {
    DECLINED_CARD: "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
    "4000000000000069": "expired_card",
}
_SEPARATORS = re.compile(r"[ -]")


@dataclass(frozen=True)
class Authorisation:
    approved: bool
    code: str
    last4: str
    decline_reason: str = ""


def card_number_normalise(card_number: str) -> str:
    """Digits only: buyers type spaces and dashes between the groups."""
    return _SEPARATORS.sub("", card_number)


def card_number_problem(card_number: str) -> str | None:
    """Why a card number cannot be a card, or None when it is well formed."""
    digits = card_number_normalise(card_number)
    if not digits.isascii() or not digits.isdigit():
        return "A card number has digits only."
    if not 12 <= len(digits) <= 19:
        return "A card number has 12 to 19 digits."
    if not luhn_valid(digits):
        return "This is not a valid card number (check digit)."
    return None


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def payment_authorise(*, card_number: str, amount_cents: int) -> Authorisation:
    """Authorises `amount_cents` on the card; a decline is an answer, not an exception."""
    digits = card_number_normalise(card_number)
    reason = DECLINES.get(digits)
    if reason is not None:
        return Authorisation(approved=False, code="", last4=digits[-4:], decline_reason=reason)
    return Authorisation(approved=True, code=f"AUTH-{secrets.token_hex(6).upper()}", last4=digits[-4:])
