"""A fake card authoriser with the usual test cards, standing in for the payment provider.

Like a real provider it takes an idempotency key (the order reference) and keeps its
authorisations in a ledger (PaymentAuthorisation): the same key gets back its live
authorisation rather than a second charge, and a void frees the key for a fresh one.

4242 4242 4242 4242 is approved and 4000 0000 0000 0002 is declined, as with Stripe's test
cards; the other decline cards below answer with their reason. Any other well-formed
(Luhn-valid) number is approved, so demo data and load tests can use their own numbers.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models.functions import Now

from legacy_api.models import PaymentAuthorisation

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


def payment_authorise(*, key: str, card_number: str, amount_cents: int) -> Authorisation:
    """Authorises `amount_cents` on the card once per key; a decline is an answer, not an exception.
    A key's live authorisation for another amount (a request that died after authorising, retried
    at the price its buyer was shown since) is voided, and the amount asked for authorised: what
    is charged is always what is authorised. Callers hold the key's order row."""
    live = _live(key)
    if live is not None and live.amount_cents == amount_cents:
        return _as_authorisation(live)
    if live is not None:
        payment_void(key=key, code=live.code)
    digits = card_number_normalise(card_number)
    reason = DECLINES.get(digits, "")
    try:
        with transaction.atomic():
            row = PaymentAuthorisation.objects.create(
                key=key,
                approved=not reason,
                code="" if reason else f"AUTH-{secrets.token_hex(6).upper()}",
                last4=digits[-4:],
                decline_reason=reason,
                amount_cents=amount_cents,
            )
    except IntegrityError:
        # A racing request with the same key was approved first: that is the authorisation.
        live = _live(key)
        if live is None:
            raise
        return _as_authorisation(live)
    return _as_authorisation(row)


def payment_void(*, key: str, code: str | None = None) -> bool:
    """Voids the live authorisation of `key` (only the one given as `code`, when given), if there
    is one; True when one was voided. A request voiding what it authorised names its code: once
    its own was voided, the key's live authorisation may be a retry's."""
    live = PaymentAuthorisation.objects.filter(key=key, approved=True, voided_at__isnull=True)
    if code is not None:
        live = live.filter(code=code)
    return bool(live.update(voided_at=Now()))


def payment_figures() -> dict[str, int]:
    """Approvals, voids and declines ever given: the proof that no order was authorised twice."""
    rows = PaymentAuthorisation.objects
    return {
        "authorisations": rows.filter(approved=True).count(),
        "voids": rows.filter(voided_at__isnull=False).count(),
        "declines": rows.filter(approved=False).count(),
    }


def _live(key: str) -> PaymentAuthorisation | None:
    return PaymentAuthorisation.objects.filter(key=key, approved=True, voided_at__isnull=True).first()


def _as_authorisation(row: PaymentAuthorisation) -> Authorisation:
    return Authorisation(approved=row.approved, code=row.code, last4=row.last4, decline_reason=row.decline_reason)
