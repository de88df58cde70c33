"""The hot path's replay fingerprints (shop.fingerprints, compared in orders.acceptance) hold no
more of the card than its last four digits: with the database and SECRET_KEY, a stored one cannot
be searched back to the card. A retry with another card with the same last four digits is the
first order's replay; another last four is another body (422)."""

from __future__ import annotations

import hashlib
import hmac
import json

from django.conf import settings

from orders.cards import card_open
from orders.models import HotOrder, SaleAllocation
from shop.order_input import order_input_parse
from tests.orders.conftest import APPROVED_CARD, order_body, post_order

# Luhn-valid, approved, and ending as APPROVED_CARD does (4242); and one ending otherwise.
SAME_LAST_FOUR = "5555555555594242"
OTHER_LAST_FOUR = "5555555555554444"
SLUG = "muskie-casting-rod"


def keyed(canonical: list) -> str:
    """What anyone holding SECRET_KEY computes for a guessed body."""
    body = json.dumps(canonical, separators=(",", ":")).encode()
    return hmac.new(settings.SECRET_KEY.encode(), body, hashlib.sha256).hexdigest()


def card_wide(order: HotOrder, card: str) -> str:
    """The fingerprint the release before stored: over the whole card number."""
    return keyed([SLUG, order.quantity, order.customer_name, order.customer_email.lower(), card])


def test_a_stored_fingerprint_is_the_orders_own_fields_and_no_more_of_the_card(client, allocation):
    body = order_body(email="Ann@Example.com")
    assert post_order(client, body, key="k-1").status_code == 202
    order = HotOrder.objects.get()
    # Everything it is made of is on the row beside it: nothing of the card but its last four.
    fields = [SLUG, order.quantity, order.customer_name, order.customer_email.lower(), order.card_last4]
    assert order.fingerprint == keyed(fields)
    # So no guess of the digits before the last four can be told right or wrong by it.
    guesses = {
        order_input_parse(json.dumps(order_body(email="Ann@Example.com", card=card)).encode()).fingerprint(
            product_slug=SLUG
        )
        for card in (APPROVED_CARD, SAME_LAST_FOUR)
    }
    assert guesses == {order.fingerprint}
    assert order.fingerprint != card_wide(order, APPROVED_CARD)


def test_a_retry_with_another_card_with_the_same_last_four_gets_the_first_order_and_no_second(client, allocation):
    first = post_order(client, order_body(email="ann@example.com"), key="k-1")
    assert first.status_code == 202, first.content
    again = post_order(client, order_body(email="ann@example.com", card=SAME_LAST_FOUR), key="k-1")
    assert again.status_code == 202, again.content
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    order = HotOrder.objects.get()
    # The first card is the one the worker will send: the retry's card is never sealed nor sent.
    assert card_open(order.card_sealed) == APPROVED_CARD
    assert SaleAllocation.objects.get(pk=allocation.pk).reserved == 1


def test_a_retry_with_another_last_four_is_another_body(client, allocation):
    assert post_order(client, order_body(email="ann@example.com"), key="k-1").status_code == 202
    reused = post_order(client, order_body(email="ann@example.com", card=OTHER_LAST_FOUR), key="k-1")
    assert reused.status_code == 422
    assert reused.json()["error"] == "idempotency_key_reused"
    assert HotOrder.objects.count() == 1
    assert SaleAllocation.objects.get(pk=allocation.pk).reserved == 1


def test_an_order_the_release_before_wrote_is_replayed_and_its_card_wide_fingerprint_renewed(client, allocation):
    """A process of the release before, still running while this one is rolled out, stored the
    card-wide form: the same body is still its replay (and the row renewed), another still 422."""
    first = post_order(client, order_body(email="ann@example.com"), key="k-1")
    order = HotOrder.objects.get()
    HotOrder.objects.filter(pk=order.pk).update(fingerprint=card_wide(order, APPROVED_CARD))

    reused = post_order(client, order_body(email="ann@example.com", card=SAME_LAST_FOUR), key="k-1")
    assert reused.status_code == 422  # not the body it was accepted for, as that release judged it
    again = post_order(client, order_body(email="ann@example.com"), key="k-1")
    assert again.status_code == 202 and again.json() == first.json()
    order.refresh_from_db()
    fields = [SLUG, order.quantity, order.customer_name, order.customer_email.lower(), order.card_last4]
    assert order.fingerprint == keyed(fields)
