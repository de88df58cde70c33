"""Card testing: cards declined are counted per mailbox and per client address, and past a
limit the checkout and the buy-now API refuse the next try from there with 429, before its card
reaches the order backend."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache

from legacy_api.models import PaymentAuthorisation
from shop.models import PlacedOrder
from tests.shop.test_buy_now import buy
from tests.shop.test_checkout import DECLINED, checkout_form, fill_basket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def limits(settings, counting_clock_pinned):
    settings.SHOP_DECLINES_PER_EMAIL, settings.SHOP_DECLINES_PER_IP = 3, 5
    cache.clear()  # another test's declines, from the same 127.0.0.1


def buy_with(client, rod, *, email: str, card: str = DECLINED):
    payment = {"card_number": card}
    return buy(client, rod, key=uuid.uuid4().hex, customer={"name": "Tess", "email": email}, payment=payment)


def test_buy_now_refuses_card_testing_from_one_address_whatever_the_email(client, legacy_api, rod, limits):
    answers = [buy_with(client, rod, email=f"t{i}@example.com").status_code for i in range(7)]
    assert answers == [402] * 5 + [429] * 2

    sent = PaymentAuthorisation.objects.count()
    refused = buy_with(client, rod, email="someone-new@example.com", card="4242424242424242")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert refused.json()["error"] == "throttled" and "declined" in refused.json()["detail"]
    assert PaymentAuthorisation.objects.count() == sent  # nothing reached the order backend
    assert not PlacedOrder.objects.exists()


def test_the_checkout_refuses_card_testing_for_one_mailbox_however_it_is_spelt(client, legacy_api, rod, limits):
    fill_basket(client, rod, 1)
    for _ in range(3):
        assert client.post("/checkout/", checkout_form(card_number=DECLINED)).status_code == 402
    sent = PaymentAuthorisation.objects.count()

    response = client.post("/checkout/", checkout_form(email="ADA+again@example.com"))

    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert b"Too many cards were declined" in response.content
    assert PaymentAuthorisation.objects.count() == sent
    assert not PlacedOrder.objects.exists()


def test_a_card_mistyped_once_or_twice_is_not_held_against_the_buyer(client, legacy_api, rod, limits):
    fill_basket(client, rod, 1)
    for _ in range(2):
        assert client.post("/checkout/", checkout_form(card_number=DECLINED)).status_code == 402
    assert client.post("/checkout/", checkout_form()).status_code == 302
    assert PlacedOrder.objects.count() == 1
