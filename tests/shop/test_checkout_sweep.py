"""Checkouts in doubt (shop.checkout_pending, shop.checkout_sweep): a storefront checkout whose
answer was lost and whose buyer never came back is still recorded, confirmed and logged once,
or settled as never placed, against the real legacy API over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

import legacy_client
from events.models import Event
from legacy_api.models import Order, PaymentAuthorisation
from legacy_client import OrderAnswer, Outcome
from shop.checkout_events import SOURCE
from shop.checkout_sweep import checkout_sweep
from shop.checkouts import SESSION_CHECKOUT_REFERENCE
from shop.models import Basket, PendingCheckout, PlacedOrder, Product
from shop.tasks import checkouts_in_doubt_sweep
from tests.shop.conftest import basket_lines
from tests.shop.test_buy_now import buy
from tests.shop.test_checkout import DECLINED, checkout_form, fill_basket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def answers_lost(monkeypatch):
    """The legacy API places the order, but its answer never reaches the storefront (a timeout)."""
    place = legacy_client.order_place

    def place_and_lose(**kwargs):
        place(**kwargs)
        return OrderAnswer(Outcome.UNKNOWN, detail="timed out")

    monkeypatch.setattr(legacy_client, "order_place", place_and_lose)
    return place


def looks_due() -> None:
    """Time passes: every checkout in doubt is due for its look."""
    PendingCheckout.objects.update(look_after=timezone.now() - timedelta(seconds=1))


def storefront_statuses(reference: str) -> list[str]:
    return list(Event.objects.filter(source=SOURCE, resources=[reference]).values_list("status", flat=True))


def test_a_checkout_whose_answer_was_lost_and_never_retried_is_recorded_confirmed_and_logged_once(
    client, legacy_api, rod, customer, answers_lost, mailoutbox, monkeypatch
):
    client.force_login(customer)
    fill_basket(client, rod, 2)
    lost = client.post("/checkout/", checkout_form(email="angler@example.com", city="Hayward"))
    assert lost.status_code == 503
    reference = client.session[SESSION_CHECKOUT_REFERENCE]
    assert not PlacedOrder.objects.exists() and mailoutbox == []
    assert checkout_sweep().as_dict() == {"placed": 0, "not_placed": 0, "in_doubt": 0}  # not due yet

    looks_due()
    assert checkouts_in_doubt_sweep.apply().get() == {"placed": 1, "not_placed": 0, "in_doubt": 0}

    order = PlacedOrder.objects.get()
    assert (order.reference, order.customer, order.email, order.city) == (
        reference,
        customer,
        "angler@example.com",
        "Hayward",
    )
    assert order.total_cents == 2 * 4999 and order.card_last4 == "4242"
    assert Order.objects.get(reference=reference).number == order.number  # the order of record's
    assert [m.to for m in mailoutbox] == [["angler@example.com"]] and order.number in mailoutbox[0].body
    assert order.number in client.get("/account/orders/").content.decode()
    assert not PendingCheckout.objects.exists()
    assert storefront_statuses(order.number) == ["PLACED"]
    assert checkout_sweep().as_dict() == {"placed": 0, "not_placed": 0, "in_doubt": 0}

    # The buyer comes back and submits again: the same order, no second one, no second email.
    monkeypatch.setattr(legacy_client, "order_place", answers_lost)
    again = client.post("/checkout/", checkout_form(email="angler@example.com"))
    assert again.status_code == 302 and again["Location"] == f"/orders/{order.number}/"
    assert PlacedOrder.objects.count() == 1 and Order.objects.filter(status=Order.Status.PLACED).count() == 1
    assert len(mailoutbox) == 1
    assert basket_lines(Basket.objects.get()) == {}
    assert Product.objects.get(pk=rod.pk).stock == 8


def test_a_checkout_that_died_before_its_order_reached_the_legacy_api_is_settled_as_never_placed(
    client, legacy_api, rod, monkeypatch
):
    def killed_mid_call(**kwargs):
        raise SystemExit("the server process was stopped")

    fill_basket(client, rod, 1)
    monkeypatch.setattr(legacy_client, "order_place", killed_mid_call)
    with pytest.raises(SystemExit):
        client.post("/checkout/", checkout_form())
    reference = PendingCheckout.objects.get().reference
    monkeypatch.undo()

    looks_due()
    assert checkout_sweep().as_dict() == {"placed": 0, "not_placed": 1, "in_doubt": 0}

    assert not PendingCheckout.objects.exists() and not PlacedOrder.objects.exists()
    assert not Order.objects.filter(reference=reference).exists()
    assert storefront_statuses(reference) == ["FAILED"]
    failed = Event.objects.get(source=SOURCE, resources=[reference])
    assert (failed.data["reason"], failed.data["retryable"]) == ("not_found", True)

    # The buyer comes back: their session's reference places the order, once.
    assert client.post("/checkout/", checkout_form()).status_code == 302
    assert PlacedOrder.objects.get().reference == reference
    assert not PendingCheckout.objects.exists()


def test_a_checkout_still_being_placed_is_asked_again_later_and_settled_once_its_request_died(
    client, legacy_api, rod, monkeypatch, settings
):
    """The legacy API still holds the reference for a request of the checkout's (its lease runs):
    the sweep cannot tell, and asks again later, less often each time. Once that request's lease
    ended the lookup drops it, voiding what it authorised, and the checkout is settled."""
    from tests.legacy_api.conftest import pending

    fill_basket(client, rod, 1)
    monkeypatch.setattr(legacy_client, "order_place", lambda **kwargs: OrderAnswer(Outcome.UNKNOWN))
    client.post("/checkout/", checkout_form())
    reference = PendingCheckout.objects.get().reference
    held = pending(reference, caller="storefront", lease_seconds=60)
    PaymentAuthorisation.objects.create(key=reference, approved=True, code="A1", last4="4242", amount_cents=4999)

    looks_due()
    before = timezone.now()
    assert checkout_sweep().as_dict() == {"placed": 0, "not_placed": 0, "in_doubt": 1}
    in_doubt = PendingCheckout.objects.get()
    assert in_doubt.looks == 1
    wait = (in_doubt.look_after - before).total_seconds()
    assert (
        2 * settings.SHOP_CHECKOUT_SWEEP_AFTER_SECONDS - 5 <= wait <= 2 * settings.SHOP_CHECKOUT_SWEEP_AFTER_SECONDS + 5
    )

    Order.objects.filter(pk=held.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    looks_due()
    assert checkout_sweep().as_dict() == {"placed": 0, "not_placed": 1, "in_doubt": 0}
    assert not Order.objects.filter(reference=reference).exists()
    assert PaymentAuthorisation.objects.get(key=reference).voided_at is not None
    assert not PlacedOrder.objects.exists()


def test_a_legacy_api_that_cannot_be_reached_leaves_the_checkout_in_doubt(
    client, legacy_api, rod, answers_lost, settings, closed_port_url
):
    fill_basket(client, rod, 1)
    client.post("/checkout/", checkout_form())
    looks_due()
    reachable = settings.LEGACY_API_URL
    settings.LEGACY_API_URL = closed_port_url

    assert checkout_sweep().as_dict() == {"placed": 0, "not_placed": 0, "in_doubt": 1}
    assert PendingCheckout.objects.get().looks == 1 and not PlacedOrder.objects.exists()

    settings.LEGACY_API_URL = reachable
    looks_due()
    assert checkout_sweep().as_dict() == {"placed": 1, "not_placed": 0, "in_doubt": 0}


def test_a_try_on_its_way_while_the_sweep_looks_keeps_the_checkout_in_doubt(client, legacy_api, rod, monkeypatch):
    """The buyer submits again just as the sweep asks: the lookup's "none" may be older than that
    try's order, so the checkout is not settled on it."""
    fill_basket(client, rod, 1)
    monkeypatch.setattr(legacy_client, "order_place", lambda **kwargs: OrderAnswer(Outcome.UNKNOWN))
    client.post("/checkout/", checkout_form())
    monkeypatch.undo()
    looks_due()
    find = legacy_client.order_find

    def a_try_starts_meanwhile(**kwargs):
        answer = find(**kwargs)
        PendingCheckout.objects.update(look_after=timezone.now() + timedelta(minutes=2))
        return answer

    monkeypatch.setattr(legacy_client, "order_find", a_try_starts_meanwhile)
    checkout_sweep()

    assert PendingCheckout.objects.exists()
    assert not Event.objects.filter(source=SOURCE, status="FAILED", data__reason="not_found").exists()


@pytest.mark.parametrize("card", ["4242 4242 4242 4242", DECLINED])
def test_a_checkout_with_a_definite_answer_leaves_nothing_in_doubt(client, legacy_api, rod, card):
    fill_basket(client, rod, 1)
    client.post("/checkout/", checkout_form(card_number=card))
    assert not PendingCheckout.objects.exists()


def test_a_checkout_that_found_no_stock_leaves_nothing_in_doubt(client, legacy_api, rod):
    fill_basket(client, rod, 3)
    Product.objects.filter(pk=rod.pk).update(stock=2)
    assert client.post("/checkout/", checkout_form()).status_code == 409
    assert not PendingCheckout.objects.exists()


def test_a_checkout_in_doubt_keeps_no_card_number(client, legacy_api, rod, answers_lost):
    fill_basket(client, rod, 1)
    client.post("/checkout/", checkout_form())
    row = PendingCheckout.objects.values().get()
    assert not any("4242" in str(value) for value in row.values())


def test_a_buy_now_whose_answer_was_lost_is_recorded_for_its_own_body(client, legacy_api, rod, answers_lost):
    assert buy(client, rod, key="lost-1").status_code == 503
    looks_due()
    assert checkout_sweep().placed == 1

    order = PlacedOrder.objects.get()
    assert order.reference == legacy_client.reference_for_key("lost-1") and order.fingerprint
    again = buy(Client(), rod, key="lost-1")
    assert again.status_code == 201 and again.json()["number"] == order.number
    other_body = buy(Client(), rod, key="lost-1", quantity=2)
    assert other_body.status_code == 422
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 1


def test_beat_runs_the_sweep_where_the_storefront_runs(settings):
    from config.celery import app

    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["shop.tasks.checkouts_in_doubt_sweep"] <= 60
    assert "shop.tasks.checkouts_in_doubt_sweep" in app.tasks
