"""Card testing: cards declined are counted per mailbox and per client address, and past a
limit the checkout and the buy-now API refuse the next try from there with 429, before its card
reaches the order backend."""

from __future__ import annotations

import contextlib
import threading
import uuid

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings

from legacy_api.models import PaymentAuthorisation
from shop.decline_throttle import DETAIL, TRIES_OUT_DETAIL, TRIES_OUT_RETRY_SECONDS, DeclinesThrottled, decline_try
from shop.models import PlacedOrder
from tests.conftest import free_port
from tests.shop.test_buy_now import buy
from tests.shop.test_checkout import DECLINED, checkout_form, fill_basket

pytestmark = pytest.mark.django_db(transaction=True)

APPROVED = "4242424242424242"


@pytest.fixture
def limits(settings, counting_clock_pinned):
    settings.SHOP_DECLINES_PER_EMAIL, settings.SHOP_DECLINES_PER_IP = 3, 5
    cache.clear()  # another test's declines, from the same 127.0.0.1


def buy_with(client, rod, *, email: str, card: str = DECLINED, key: str | None = None):
    payment = {"card_number": card}
    return buy(client, rod, key=key or uuid.uuid4().hex, customer={"name": "Tess", "email": email}, payment=payment)


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


def test_a_replayed_declined_key_sends_no_card_and_is_not_counted_again(client, legacy_api, rod, limits):
    """Answered from what the key got the first time, a replay sends no card: counted as one
    more declined card, three sends of one declined request locked the buyer's mailbox out."""
    assert buy_with(client, rod, email="ada@example.com", key="k-declined").status_code == 402
    for _ in range(3):
        assert buy_with(client, rod, email="ada@example.com", key="k-declined").status_code == 402
    assert PaymentAuthorisation.objects.filter(approved=False).count() == 1

    assert buy_with(client, rod, email="ada@example.com", card=APPROVED).status_code == 201


def test_a_replay_of_a_placed_key_is_answered_with_its_order_whatever_its_address_s_count(
    client, legacy_api, rod, limits
):
    """The same key and body get the same answer: a buyer whose answer was lost learns of the
    order it was charged for, though others behind the address (a carrier's NAT) had declines."""
    assert buy_with(client, rod, email="ada@example.com", card=APPROVED, key="k-placed").status_code == 201
    others = Client()  # the same 127.0.0.1
    answers = [buy_with(others, rod, email=f"other{i}@example.com").status_code for i in range(6)]
    assert answers[-1] == 429

    replay = buy_with(client, rod, email="ada@example.com", card=APPROVED, key="k-placed")

    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"


def test_tries_sent_at_once_do_not_all_slip_under_the_limit(legacy_api, rod, limits, settings):
    """Counted only once declined, tries sent together all read a count under the limit: 8 of 8
    parallel declined cards from one address reached the order backend past a limit of 2."""
    settings.SHOP_DECLINES_PER_IP, settings.LEGACY_CAPACITY = 2, 16
    start, answers = threading.Barrier(8), []

    def attempt(i: int) -> None:
        try:
            start.wait(10)
            answers.append(buy_with(Client(), rod, email=f"t{i}@example.com").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(answers) == 8 and answers.count(402) <= 2, sorted(answers)


@pytest.mark.parametrize(("card", "expected"), [(APPROVED, 302), (DECLINED, 402)])
def test_the_checkout_places_and_refuses_orders_while_the_cache_is_away(
    client, legacy_api, rod, settings, card, expected
):
    """The checkout does not depend on the cache: the limits' counts are skipped while it is
    away, not the order (a good card got 500, and a declined card's answer was lost)."""
    settings.SHOP_DECLINES_PER_EMAIL, settings.SHOP_DECLINES_PER_IP = 5, 15
    fill_basket(client, rod, 1)
    client.get("/checkout/")
    away = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1},
        }
    }
    client.raise_request_exception = False
    with override_settings(CACHES=away):
        response = client.post("/checkout/", checkout_form(card_number=card))

    assert response.status_code == expected, response.status_code
    assert PlacedOrder.objects.count() == (1 if expected == 302 else 0)


@pytest.mark.parametrize(("card", "expected"), [(APPROVED, 201), (DECLINED, 402)])
def test_the_buy_now_places_and_refuses_orders_while_the_cache_is_away(legacy_api, rod, settings, card, expected):
    """As the checkout: the buy-now answered 503 for every product, on sale or not, while the
    cache was away, as it looked the product's sale up there first."""
    settings.SHOP_DECLINES_PER_EMAIL, settings.SHOP_DECLINES_PER_IP = 5, 15
    away = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1},
        }
    }
    client = Client(raise_request_exception=False)
    with override_settings(CACHES=away):
        response = buy_with(client, rod, email="ada@example.com", card=card)

    assert response.status_code == expected, response.content
    assert PlacedOrder.objects.count() == (1 if expected == 201 else 0)


def test_tries_out_at_once_are_told_to_come_back_in_seconds_not_that_cards_were_declined(limits):
    """Buyers behind one carrier's address with their checkouts out at once (an order backend
    slow under a sale) were told "Too many cards were declined" and to wait minutes, with no card
    declined. Past the limit they are told what it is, and to come back in seconds; once those
    are answered the address has nothing held against it. Declined cards still lock it out for
    the window."""
    with contextlib.ExitStack() as out:
        for _ in range(5):
            out.enter_context(decline_try(address="203.0.113.9", email=f"{uuid.uuid4().hex}@example.com"))
        with pytest.raises(DeclinesThrottled) as refused, decline_try(address="203.0.113.9", email="x@example.com"):
            pass
    assert (str(refused.value), refused.value.retry_after) == (TRIES_OUT_DETAIL, TRIES_OUT_RETRY_SECONDS)

    for _ in range(5):
        with decline_try(address="203.0.113.9", email=f"{uuid.uuid4().hex}@example.com") as attempt:
            attempt.declined()
    with pytest.raises(DeclinesThrottled) as refused, decline_try(address="203.0.113.9", email="y@example.com"):
        pass
    assert str(refused.value) == DETAIL and refused.value.retry_after > TRIES_OUT_RETRY_SECONDS


def test_tries_that_never_came_back_are_forgotten_within_a_minute_not_a_window(limits, monkeypatch):
    """A try whose process was killed mid-call (or whose cache was away when it ended) never
    gives its place back: its mailbox stayed refused "in a few seconds" for up to 15 minutes."""
    from types import SimpleNamespace

    from shop import decline_throttle

    abandoned = [decline_try(address=None, email="killed@example.com") for _ in range(3)]  # the limit
    for attempt in abandoned:  # each left mid-call: its `finally` never runs
        attempt.__enter__()
    with pytest.raises(DeclinesThrottled) as refused, decline_try(address=None, email="killed@example.com"):
        pass
    assert str(refused.value) == TRIES_OUT_DETAIL

    later = decline_throttle.time.time() + 2 * decline_throttle._tries_out_seconds()
    monkeypatch.setattr(decline_throttle, "time", SimpleNamespace(time=lambda: later))
    with decline_try(address=None, email="killed@example.com"):
        pass
    assert len(abandoned) == 3  # still held: never closed, as a killed process's
