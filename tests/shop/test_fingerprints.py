"""The monolith's buy-now fingerprints (shop.fingerprints) hold no more of the card than its last
four digits: with the database and SECRET_KEY, a receipt's or a refusal's cannot be searched back
to the card. A retry with another card with the same last four digits is the first answer's
replay (charged once); another last four is another body (422). Refusals kept from the release
before keep their card-wide fingerprint apart, matched for a week, then dropped."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

import legacy_client
from legacy_api.models import Order, PaymentAuthorisation
from shop.housekeeping import sessions_baskets_prune
from shop.models import BuyNowRefusal, PlacedOrder
from tests.shop.test_buy_now import buy

pytestmark = pytest.mark.django_db(transaction=True)

APPROVED_CARD = "4242424242424242"
SAME_LAST_FOUR = "5555555555594242"  # Luhn-valid, approved, ending as APPROVED_CARD does
OTHER_LAST_FOUR = "5555555555554444"
DECLINED_CARD = "4000000000000002"
DECLINED_SAME_LAST_FOUR = "4000000000180002"  # Luhn-valid, ending as DECLINED_CARD does


def keyed(canonical: list) -> str:
    """What anyone holding SECRET_KEY computes for a guessed body."""
    body = json.dumps(canonical, separators=(",", ":")).encode()
    return hmac.new(settings.SECRET_KEY.encode(), body, hashlib.sha256).hexdigest()


def card_wide(card: str, *, slug: str = "tourney-casting-rod") -> str:
    """The fingerprint the release before stored for `buy`'s body: over the whole card number."""
    return keyed([slug, 1, "Ada Angler", "ada@example.com", card])


def approvals() -> int:
    return PaymentAuthorisation.objects.filter(approved=True).count()


def test_a_receipts_fingerprint_is_its_orders_own_fields_and_no_more_of_the_card(client, legacy_api, rod):
    assert buy(client, rod).status_code == 201
    receipt = PlacedOrder.objects.get()
    line = Order.objects.get(pk=receipt.legacy_id).lines.get()
    assert receipt.card_last4 == "4242"
    fields = [line.product_slug, line.quantity, receipt.name, receipt.email.lower(), receipt.card_last4]
    assert receipt.fingerprint == keyed(fields)
    assert receipt.fingerprint != card_wide(APPROVED_CARD)


def test_a_retry_with_another_card_with_the_same_last_four_gets_the_first_order_charged_once(client, legacy_api, rod):
    first = buy(client, rod)
    again = buy(Client(), rod, payment={"card_number": SAME_LAST_FOUR})
    assert first.status_code == 201, first.content
    assert (again.status_code, again.json()) == (201, first.json())
    assert again["Idempotent-Replayed"] == "true"
    assert PlacedOrder.objects.count() == 1 and Order.objects.count() == 1
    assert approvals() == 1 and PaymentAuthorisation.objects.count() == 1


def test_a_retry_with_another_last_four_is_422_and_charges_nothing(client, legacy_api, rod):
    assert buy(client, rod).status_code == 201
    reused = buy(Client(), rod, payment={"card_number": OTHER_LAST_FOUR})
    assert (reused.status_code, reused.json()["error"]) == (422, "idempotency_key_reused")
    assert PlacedOrder.objects.count() == 1 and PaymentAuthorisation.objects.count() == 1


def test_a_declined_keys_retry_with_the_same_last_four_is_refused_again_sending_nothing(client, legacy_api, rod):
    first = buy(client, rod, key="dec-1", payment={"card_number": DECLINED_CARD})
    again = buy(client, rod, key="dec-1", payment={"card_number": DECLINED_SAME_LAST_FOUR})
    other = buy(client, rod, key="dec-1", payment={"card_number": OTHER_LAST_FOUR})
    assert first.status_code == 402
    assert (again.status_code, again.json()) == (402, first.json())
    assert (other.status_code, other.json()["error"]) == (422, "idempotency_key_reused")
    assert PaymentAuthorisation.objects.count() == 1  # the first try's decline only


def test_a_refusal_kept_from_the_release_before_is_matched_then_renewed(client, legacy_api, rod):
    reference = legacy_client.reference_for_key("dec-1")
    BuyNowRefusal.objects.create(
        reference=reference, fingerprint="", fingerprint_before=card_wide(DECLINED_CARD), detail="Card declined."
    )
    other = buy(client, rod, key="dec-1", payment={"card_number": DECLINED_SAME_LAST_FOUR})
    assert (other.status_code, other.json()["error"]) == (422, "idempotency_key_reused")
    same = buy(client, rod, key="dec-1", payment={"card_number": DECLINED_CARD})
    assert same.status_code == 402
    refusal = BuyNowRefusal.objects.get()
    assert refusal.fingerprint_before == ""
    assert refusal.fingerprint == keyed(["tourney-casting-rod", 1, "Ada Angler", "ada@example.com", "0002"])
    # Renewed: now in the new form, a card with the same last four is its replay too.
    again = buy(client, rod, key="dec-1", payment={"card_number": DECLINED_SAME_LAST_FOUR})
    assert (again.status_code, again.json()) == (402, same.json())
    assert not PaymentAuthorisation.objects.exists()


def test_a_week_after_the_refusal_its_card_wide_fingerprint_is_dropped_and_every_body_refused(client, legacy_api, rod):
    reference = legacy_client.reference_for_key("dec-1")
    refusal = BuyNowRefusal.objects.create(
        reference=reference, fingerprint="", fingerprint_before=card_wide(DECLINED_CARD), detail="Card declined."
    )
    recent = BuyNowRefusal.objects.create(
        reference=legacy_client.reference_for_key("dec-2"), fingerprint_before=card_wide(DECLINED_CARD), detail="x"
    )
    BuyNowRefusal.objects.filter(pk=refusal.pk).update(refused_at=timezone.now() - timedelta(days=8))

    assert sessions_baskets_prune().refusal_fingerprints == 1
    refusal.refresh_from_db()
    recent.refresh_from_db()
    assert (refusal.fingerprint, refusal.fingerprint_before) == ("", "")
    assert recent.fingerprint_before == card_wide(DECLINED_CARD)
    # It holds no body: its decline is the key's answer for any, and no card is sent.
    for card in (DECLINED_CARD, APPROVED_CARD):
        answer = buy(client, rod, key="dec-1", payment={"card_number": card})
        assert answer.status_code == 402 and answer.json()["detail"] == "Card declined."
    assert not PaymentAuthorisation.objects.exists() and not PlacedOrder.objects.exists()
