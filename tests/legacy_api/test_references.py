"""An order's fingerprint (legacy_api.references) holds no more of the card than its last four
digits: with the database and SECRET_KEY, a stored one cannot be searched back to the card. The
same reference with another card with the same last four digits is the first order's replay
(authorised once); another last four is ReferenceReused."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.conf import settings

from legacy_api.models import Order, PaymentAuthorisation
from legacy_api.references import LineRequest, order_fingerprint
from tests.legacy_api.conftest import APPROVED_CARD

pytestmark = pytest.mark.django_db

SAME_LAST_FOUR = "5555555555594242"  # Luhn-valid, approved, ending as APPROVED_CARD does
OTHER_LAST_FOUR = "5555555555554444"


def keyed(order: Order, card: str) -> str:
    """What anyone holding SECRET_KEY computes for a guess of `order`'s card."""
    lines = sorted([line.product_slug, line.quantity] for line in order.lines.all())
    canonical = {"customer": [order.customer_name, order.customer_email.lower()], "lines": lines, "card": card}
    body = json.dumps(canonical, separators=(",", ":"), sort_keys=True).encode()
    return hmac.new(settings.SECRET_KEY.encode(), body, hashlib.sha256).hexdigest()


def test_a_fingerprint_tells_no_more_of_the_card_than_its_last_four_digits():
    def of(card: str) -> str:
        lines = [LineRequest(product="muskie-casting-rod", quantity=2)]
        fingerprint = order_fingerprint(
            customer_name="Ada", customer_email="a@example.com", lines=lines, card_number=card
        )
        return getattr(fingerprint, "value", fingerprint)

    assert of(APPROVED_CARD) == of(SAME_LAST_FOUR) == of("4242-4242-4242-4242")
    assert of(APPROVED_CARD) != of(OTHER_LAST_FOUR)


def test_a_stored_fingerprint_is_the_orders_own_fields_and_no_more_of_the_card(post_order, order_body, muskie_rod):
    assert post_order(order_body()).status_code == 201
    order = Order.objects.get()
    assert order.fingerprint == keyed(order, order.card_last4)
    assert order.fingerprint != keyed(order, APPROVED_CARD)


def test_the_same_reference_with_another_card_with_the_same_last_four_is_the_first_order(
    post_order, order_body, muskie_rod
):
    placed = post_order(order_body())
    again = post_order(order_body(payment={"card_number": SAME_LAST_FOUR}))
    assert placed.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == placed.json()["id"]
    assert PaymentAuthorisation.objects.count() == 1 and Order.objects.count() == 1


def test_the_same_reference_with_another_last_four_is_reference_reused(post_order, order_body, muskie_rod):
    assert post_order(order_body()).status_code == 201
    reused = post_order(order_body(payment={"card_number": OTHER_LAST_FOUR}))
    assert (reused.status_code, reused.json()["error"]) == (422, "reference_reused")
    assert PaymentAuthorisation.objects.count() == 1


def test_an_order_the_release_before_wrote_is_replayed_and_renewed(post_order, order_body, muskie_rod):
    """A process of the release before, still running while this one is rolled out, stored the
    card-wide form: the same body is still its order (and the row renewed), another ReferenceReused."""
    placed = post_order(order_body()).json()
    order = Order.objects.get()
    Order.objects.filter(pk=order.pk).update(fingerprint=keyed(order, APPROVED_CARD))

    assert post_order(order_body(payment={"card_number": SAME_LAST_FOUR})).status_code == 422
    again = post_order(order_body())
    assert again.status_code == 200 and again.json()["id"] == placed["id"]
    order.refresh_from_db()
    assert order.fingerprint == keyed(order, "4242")
    assert PaymentAuthorisation.objects.count() == 1
