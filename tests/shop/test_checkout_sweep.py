"""Checkouts in doubt (shop.checkout_pending, shop.checkout_sweep): a storefront checkout whose
answer was lost and whose buyer never came back is still recorded, confirmed and logged once,
or settled as never placed, against the real legacy API over HTTP."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.test import Client
from django.utils import timezone

import legacy_client
from events.models import Event
from legacy_api.models import Order, PaymentAuthorisation
from legacy_client import OrderAnswer, Outcome
from shop.checkout_events import SOURCE
from shop.checkout_reference import SESSION_CHECKOUT_REFERENCE
from shop.checkout_sweep import checkout_sweep
from shop.models import Basket, PendingCheckout, PlacedOrder, Product
from shop.tasks import checkouts_in_doubt_sweep
from tests.late_delivery import DelayProxy
from tests.shop.conftest import basket_lines, patch_json
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
    class Stopped(Exception):
        """The server process stopped mid-call (an exception here, so the request's middleware
        unwinds as it would not for a real kill, and leaves the test's process as it was)."""

    def killed_mid_call(**kwargs):
        raise Stopped

    fill_basket(client, rod, 1)
    monkeypatch.setattr(legacy_client, "order_place", killed_mid_call)
    with pytest.raises(Stopped):
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


def test_a_checkout_settled_as_never_placed_is_not_placed_by_its_request_arriving_late(
    client, legacy_api, live_server, rod, settings, mailoutbox
):
    """The checkout's request was held up on its way (a proxy's queue, a busy server's backlog)
    past its answer's timeout, and past the sweep's look, which found nothing and settled it.
    Placed when it arrived, it was charged with no receipt, no email and nothing left to look up."""
    fill_basket(client, rod, 1)
    proxy = DelayProxy(urlparse(live_server.url).port, delay=4)
    settings.LEGACY_API_URL, settings.LEGACY_API_TIMEOUT = f"http://127.0.0.1:{proxy.port}/legacy-api", 1
    try:
        assert client.post("/checkout/", checkout_form()).status_code == 503  # in doubt: no answer came
        reference = PendingCheckout.objects.get().reference
        settings.LEGACY_API_URL = legacy_api
        looks_due()
        assert checkout_sweep().as_dict() == {"placed": 0, "not_placed": 1, "in_doubt": 0}
        assert proxy.forwarded.wait(20)  # and now the request arrives
    finally:
        proxy.close()

    assert not Order.objects.filter(reference=reference).exists()
    assert not PaymentAuthorisation.objects.filter(key=reference, approved=True, voided_at__isnull=True).exists()
    rod.refresh_from_db()
    assert rod.stock == 10 and not PlacedOrder.objects.exists()
    # The buyer comes back: their session's reference places the order, once.
    assert client.post("/checkout/", checkout_form()).status_code == 302
    assert PlacedOrder.objects.get().reference == reference


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
    client.post("/checkout/", checkout_form(card_number="4000 0566 5566 5556"))
    row = json.dumps(PendingCheckout.objects.values().get(), default=str)
    assert "0566" not in row and "5556" in row  # the last four digits, as on a receipt


def test_the_order_is_recorded_with_the_try_that_placed_it_not_an_earlier_one(
    client, legacy_api, rod, settings, closed_port_url, answers_lost
):
    fill_basket(client, rod, 1)
    reachable = settings.LEGACY_API_URL
    settings.LEGACY_API_URL = closed_port_url  # the first try never reaches the legacy API
    assert client.post("/checkout/", checkout_form(address_line="1 Old Road", city="Hayward")).status_code == 503
    settings.LEGACY_API_URL = reachable  # the second, to another address: placed, answer lost
    assert client.post("/checkout/", checkout_form(address_line="9 New Street", city="Oakland")).status_code == 503

    looks_due()
    assert checkout_sweep().placed == 1
    order = PlacedOrder.objects.get()
    assert (order.address_line, order.city) == ("9 New Street", "Oakland")


def test_a_signed_in_buyers_order_is_theirs_not_the_guest_try_before_it_on_the_browser(
    client, legacy_api, rod, customer, settings, closed_port_url, answers_lost
):
    fill_basket(client, rod, 1)
    reachable = settings.LEGACY_API_URL
    settings.LEGACY_API_URL = closed_port_url  # a guest's try: not sent
    client.post("/checkout/", checkout_form(name="Guest", email="guest@example.com", city="Guesttown"))
    settings.LEGACY_API_URL = reachable
    client.force_login(customer)  # someone signs in on the browser and checks out: placed, answer lost
    assert client.post("/checkout/", checkout_form(name="Ann Gler", email="angler@example.com")).status_code == 503

    looks_due()
    assert checkout_sweep().placed == 1
    order = PlacedOrder.objects.get()
    assert (order.email, order.customer, order.city) == ("angler@example.com", customer, "Hayward")


def test_an_order_no_try_matches_is_not_recorded_on_a_guess(client, legacy_api, rod, answers_lost, monkeypatch):
    fill_basket(client, rod, 1)
    client.post("/checkout/", checkout_form())
    PendingCheckout.objects.update(tries=[])  # e.g. tries forgotten: nothing to match the order to
    looks_due()

    assert checkout_sweep().as_dict() == {"placed": 0, "not_placed": 0, "in_doubt": 1}
    assert not PlacedOrder.objects.exists() and PendingCheckout.objects.get().looks == 1


def declined_while_another_tab_places_and_loses_its_answer(client, monkeypatch):
    """Tab one submits a card the legacy API declines (letting the reference go); during that
    call tab two submits a good card under the same reference, which places the order, and its
    answer is lost. Tab one's answer; the legacy API answers as itself afterwards."""
    place = legacy_client.order_place

    def tab_two_places_meanwhile(**kwargs):
        answer = place(**kwargs)
        if kwargs["card_number"].replace(" ", "") == DECLINED:
            other_tab = Client()
            other_tab.cookies = client.cookies
            monkeypatch.setattr(
                legacy_client, "order_place", lambda **kw: (place(**kw), OrderAnswer(Outcome.UNKNOWN))[1]
            )
            assert other_tab.post("/checkout/", checkout_form()).status_code == 503
            monkeypatch.setattr(legacy_client, "order_place", place)
        return answer

    monkeypatch.setattr(legacy_client, "order_place", tab_two_places_meanwhile)
    return client.post("/checkout/", checkout_form(card_number=DECLINED))


def test_a_declined_try_settles_nothing_while_another_tabs_try_is_out(client, legacy_api, rod, mailoutbox, monkeypatch):
    """Tab one's card is declined (the legacy API lets the reference go) while tab two's try, with
    a good card, is out: tab two places the order and loses its answer. The checkout stays in
    doubt, and the sweep records tab two's order."""
    fill_basket(client, rod, 1)
    client.get("/checkout/")
    assert declined_while_another_tab_places_and_loses_its_answer(client, monkeypatch).status_code == 402

    looks_due()
    assert checkout_sweep().placed == 1
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 1 and PlacedOrder.objects.count() == 1
    assert len(mailoutbox) == 1


def test_the_tab_whose_answer_was_lost_retries_under_the_same_reference_after_the_other_was_declined(
    client, legacy_api, rod, monkeypatch
):
    """Tab one's card is declined while tab two's try placed the order and lost its answer: the
    decline does not settle the reference, so tab two's retry finds its order, not a second one."""
    fill_basket(client, rod, 1)
    client.get("/checkout/")
    reference = client.session[SESSION_CHECKOUT_REFERENCE]
    assert declined_while_another_tab_places_and_loses_its_answer(client, monkeypatch).status_code == 402
    assert client.session[SESSION_CHECKOUT_REFERENCE] == reference

    tab_two = Client()
    tab_two.cookies = client.cookies
    assert tab_two.post("/checkout/", checkout_form()).status_code == 302
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 1
    assert PlacedOrder.objects.get().reference == reference


def test_signing_in_at_checkout_then_a_retry_finds_the_accounts_own_order_with_its_address(
    client, legacy_api, rod, customer, answers_lost, monkeypatch
):
    """The reference was minted while the buyer was a guest; signed in, they ordered, the answer
    was lost, and they retried with another card: the order is their account's, to their address."""
    fill_basket(client, rod, 1)
    assert client.get("/checkout/").status_code == 200
    client.force_login(customer)
    mine = checkout_form(name="Ann Gler", email="angler@example.com", address_line="9 New Street", city="Oakland")
    assert client.post("/checkout/", mine).status_code == 503
    monkeypatch.setattr(legacy_client, "order_place", answers_lost)

    retry = client.post("/checkout/", {**mine, "card_number": "5555 5555 5555 4444"})

    order = PlacedOrder.objects.get()
    assert (order.customer, order.address_line, order.city) == (customer, "9 New Street", "Oakland")
    assert retry["Location"] == f"/orders/{order.number}/"
    assert basket_lines(Basket.objects.get(owner=customer)) == {}


@pytest.mark.parametrize("meanwhile", ["the buyer's retry", "another body under the key"])
def test_a_buy_now_request_while_the_sweep_records_its_order_cannot_take_it(
    client, legacy_api, rod, answers_lost, monkeypatch, meanwhile
):
    """The sweep records a buy-now's receipt with its body's fingerprint in one write: a request
    right after the receipt can neither claim it for another body nor lose the buyer
    their access."""
    import shop.receipts

    assert buy(client, rod, key="lost-2").status_code == 503
    looks_due()
    record = shop.receipts.placed_order_record
    seen = {}

    def request_meanwhile(**kwargs):
        order = record(**kwargs)  # committed: the request comes right after
        if meanwhile == "the buyer's retry":
            seen["answer"] = buy(client, rod, key="lost-2")
        else:
            seen["answer"] = buy(Client(), rod, key="lost-2", quantity=2)
        return order

    monkeypatch.setattr(shop.receipts, "placed_order_record", request_meanwhile)
    assert checkout_sweep().placed == 1
    monkeypatch.undo()

    if meanwhile == "the buyer's retry":
        assert seen["answer"].status_code == 201 and "Idempotent-Replayed" not in seen["answer"]
        assert client.get(seen["answer"].json()["order_url"]).status_code == 200
    else:
        assert seen["answer"].status_code == 422
        assert buy(client, rod, key="lost-2").status_code == 201


def test_a_guests_order_is_not_given_to_an_account_whose_try_the_legacy_api_refused(
    client, legacy_api, rod, customer, answers_lost, monkeypatch
):
    """A guest's try places the order and loses its answer; someone signs in on the browser and
    sends the same name, email and basket with a card ending in other digits. The legacy API
    refuses that body, so it is not the one that placed the order: the order stays the guest's,
    shown to nobody here. (A card ending in the same four digits is the same body: the legacy
    API's fingerprint holds no more of the card, legacy_api.references.)"""
    fill_basket(client, rod, 1)
    client.get("/checkout/")
    assert client.post("/checkout/", checkout_form()).status_code == 503
    monkeypatch.setattr(legacy_client, "order_place", answers_lost)
    client.force_login(customer)

    retry = client.post("/checkout/", checkout_form(card_number="5555555555554444"))

    guests = PlacedOrder.objects.get()
    assert guests.customer is None and retry["Location"] == "/checkout/"


def test_a_product_gone_off_sale_keeps_the_reference_while_an_earlier_try_is_in_doubt(
    client, legacy_api, rod, reel, answers_lost, monkeypatch
):
    """Refused before any call (a line no longer on sale) while a try that placed the order is in
    doubt: the reference is kept, so ordering the rest finds that order, not a second one."""
    fill_basket(client, rod, 1)
    fill_basket(client, reel, 1)
    client.get("/checkout/")
    reference = client.session[SESSION_CHECKOUT_REFERENCE]
    assert client.post("/checkout/", checkout_form()).status_code == 503
    monkeypatch.setattr(legacy_client, "order_place", answers_lost)
    Product.objects.get(pk=reel.pk).soft_delete()

    assert client.post("/checkout/", checkout_form()).status_code == 409
    assert client.session[SESSION_CHECKOUT_REFERENCE] == reference
    assert patch_json(client, f"/api/basket/items/{reel.slug}", {"quantity": 0}).status_code in (200, 204)
    assert client.post("/checkout/", checkout_form()).status_code == 302
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 1


def test_a_decline_while_a_dead_try_counts_open_keeps_the_reference_and_a_good_card_then_orders(
    client, legacy_api, rod, monkeypatch
):
    """A try's process died before its call reached the legacy API (counted open for ever): a
    decline keeps the reference, and a good card then orders once under it."""

    class Stopped(Exception):
        pass

    def killed(**kwargs):
        raise Stopped

    fill_basket(client, rod, 1)
    client.get("/checkout/")
    reference = client.session[SESSION_CHECKOUT_REFERENCE]
    monkeypatch.setattr(legacy_client, "order_place", killed)
    with pytest.raises(Stopped):
        client.post("/checkout/", checkout_form())
    monkeypatch.undo()
    for _ in range(2):
        assert client.post("/checkout/", checkout_form(card_number=DECLINED)).status_code == 402
        assert client.session[SESSION_CHECKOUT_REFERENCE] == reference

    assert client.post("/checkout/", checkout_form()).status_code == 302
    assert PlacedOrder.objects.get().reference == reference
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 1
    assert not PendingCheckout.objects.exists()


def test_an_earlier_body_found_dropped_keeps_the_reference_while_a_try_of_its_own_is_in_doubt(
    client, legacy_api, rod, monkeypatch
):
    """The legacy API refuses this body for another's, whose request died (the lookup drops it):
    while a try of the checkout's own is still in doubt, the reference is kept, and the next
    submit places the order under it, once."""
    from tests.legacy_api.conftest import pending

    fill_basket(client, rod, 1)
    client.get("/checkout/")
    reference = client.session[SESSION_CHECKOUT_REFERENCE]
    monkeypatch.setattr(legacy_client, "order_place", lambda **kwargs: OrderAnswer(Outcome.UNKNOWN))
    assert client.post("/checkout/", checkout_form()).status_code == 503  # in doubt, placed nothing
    monkeypatch.undo()
    pending(reference, caller="storefront", lease_seconds=-1, fingerprint="another body's")

    refused = client.post("/checkout/", checkout_form())

    assert refused.status_code == 409 and client.session[SESSION_CHECKOUT_REFERENCE] == reference
    assert client.post("/checkout/", checkout_form()).status_code == 302
    assert PlacedOrder.objects.get().reference == reference
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 1


def test_a_body_refused_as_invalid_is_settled_at_once_and_logged_once(client, legacy_api, make_product):
    for i in range(51):  # the legacy API takes at most 50 lines
        fill_basket(client, make_product(f"p-{i}"), 1)
    response = client.post("/checkout/", checkout_form())
    assert response.status_code == 400
    assert not PendingCheckout.objects.exists()
    events = Event.objects.filter(source=SOURCE).values_list("status", "data__reason")
    assert list(events) == [("FAILED", "invalid")]


@pytest.mark.parametrize("placed", [True, False])
def test_two_sweeps_at_once_record_and_log_once(client, legacy_api, rod, mailoutbox, monkeypatch, placed):
    from django.db import connection

    fill_basket(client, rod, 1)
    if placed:
        real = legacy_client.order_place
        monkeypatch.setattr(legacy_client, "order_place", lambda **kw: (real(**kw), OrderAnswer(Outcome.UNKNOWN))[1])
    else:
        monkeypatch.setattr(legacy_client, "order_place", lambda **kw: OrderAnswer(Outcome.NOT_SENT))
    client.post("/checkout/", checkout_form())
    looks_due()
    find = legacy_client.order_find
    barrier = threading.Barrier(2)

    def find_together(**kwargs):
        answer = find(**kwargs)
        barrier.wait(timeout=10)
        return answer

    monkeypatch.setattr(legacy_client, "order_find", find_together)

    def sweep():
        try:
            checkout_sweep()
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert PlacedOrder.objects.count() == len(mailoutbox) == (1 if placed else 0)
    assert Event.objects.filter(source=SOURCE, status="PLACED").count() == (1 if placed else 0)
    assert Event.objects.filter(source=SOURCE, data__reason="not_found").count() == (0 if placed else 1)
    assert not PendingCheckout.objects.exists()


def test_a_buy_now_whose_answer_was_lost_is_recorded_for_its_own_body(
    client, legacy_api, rod, answers_lost, monkeypatch
):
    assert buy(client, rod, key="lost-1").status_code == 503
    looks_due()
    assert checkout_sweep().placed == 1

    order = PlacedOrder.objects.get()
    assert order.reference == legacy_client.reference_for_key("lost-1") and order.fingerprint
    other_body = buy(Client(), rod, key="lost-1", quantity=2)
    assert other_body.status_code == 422
    # The buyer's retry is answered as the original would have been: access to the order.
    again = buy(client, rod, key="lost-1")
    assert again.status_code == 201 and again.json()["number"] == order.number
    assert "Idempotent-Replayed" not in again
    assert client.get(again.json()["order_url"]).status_code == 200
    replay = buy(Client(), rod, key="lost-1")  # a later one is a replay, as ever
    assert replay["Idempotent-Replayed"] == "true"
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 1


def test_a_buy_now_key_is_recorded_with_the_body_that_placed_it(
    client, legacy_api, rod, settings, closed_port_url, answers_lost
):
    reachable = settings.LEGACY_API_URL
    settings.LEGACY_API_URL = closed_port_url
    assert buy(client, rod, key="k-1", quantity=1).status_code == 503  # never reached the legacy API
    settings.LEGACY_API_URL = reachable
    assert buy(client, rod, key="k-1", quantity=2).status_code == 503  # placed 2 rods, answer lost

    looks_due()
    assert checkout_sweep().placed == 1
    assert PlacedOrder.objects.get().total_cents == 2 * 4999
    assert buy(Client(), rod, key="k-1", quantity=2).status_code == 201
    assert buy(Client(), rod, key="k-1", quantity=1).status_code == 422


def test_beat_runs_the_sweep_where_the_storefront_runs(settings):
    from config.celery import app

    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["shop.tasks.checkouts_in_doubt_sweep"] <= 60
    assert "shop.tasks.checkouts_in_doubt_sweep" in app.tasks
