# ruff: noqa: F811  (the fixtures imported from the tests they live in)
"""An order's lines leave the basket once, whichever request is answered with it first, and even
when the process that recorded its receipt died before it took them: never left in the basket
for a second, paid checkout. And a refusal reaches the buyer when the cache is away."""

from __future__ import annotations

import threading

import pytest
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError

import legacy_client
import shop.checkout_progress
import shop.services
import tests.shop.test_checkout_sent_twice as sent_twice
from legacy_api.models import Order
from shop.checkout_reference import SESSION_CHECKOUT_REFERENCE
from shop.checkout_sweep import checkout_sweep
from shop.models import Basket, PendingCheckout, PlacedOrder, Product
from tests.shop.conftest import basket_lines
from tests.shop.test_checkout import DECLINED, _placed_but_answer_lost, checkout_form, fill_basket
from tests.shop.test_checkout_sent_twice import (  # noqa: F401
    _first_answer_lost,
    _looks_due,
    _progress_url,
    first_submit_held,
)
from tests.shop.test_checkout_sweep import answers_lost  # noqa: F401

# Two requests of one browser at once, each in its own thread against the live server: on
# SQLite's test database, which takes one writer, they wait on "database is locked".
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


class Killed(Exception):
    """The worker dies here (a gunicorn timeout, OOM, a deploy's SIGKILL, a dropped DB link)."""


def _dies_taking_the_basket(monkeypatch, *, off_main_thread_only: bool = False) -> None:
    real = shop.services.basket_take_ordered
    died = []

    def take(**kwargs):
        here = threading.current_thread() is not threading.main_thread() or not off_main_thread_only
        if here and not died:
            died.append(True)
            raise Killed("worker died after the receipt committed, before the basket was updated")
        return real(**kwargs)

    monkeypatch.setattr(shop.services, "basket_take_ordered", take)


def test_a_retry_after_the_placing_request_died_before_the_basket_update_takes_the_units(
    client, legacy_api, rod, monkeypatch
):
    """The submit places the order and commits its receipt, then dies before the basket is
    updated. The buyer's retry (same reference, same body) is answered with the same order, and
    takes the rod out, so it is not left for a second, paid checkout."""
    fill_basket(client, rod, 1)
    client.get("/checkout/")
    reference = client.session[SESSION_CHECKOUT_REFERENCE]
    _dies_taking_the_basket(monkeypatch)
    client.raise_request_exception = False
    assert client.post("/checkout/", checkout_form()).status_code == 500
    order = PlacedOrder.objects.get(reference=reference)

    retry = client.post("/checkout/", checkout_form())

    assert retry.status_code == 302 and retry["Location"] == f"/orders/{order.number}/"
    assert basket_lines(Basket.objects.get()) == {}, "the ordered rod is still in the basket"
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 1


def _shown_with_its_rod_taken_out(client: Client, progress: str, order: PlacedOrder) -> None:
    shown = client.get(progress)
    assert shown["Location"] == f"/orders/{order.number}/"
    assert basket_lines(Basket.objects.get()) == {}, "the ordered rod is still in the basket"


def test_the_waiting_page_takes_the_units_when_the_first_submit_died_before_the_basket_update(
    client,
    first_submit_held,
    rod,
    monkeypatch,
):
    """Double click: the first submit records the receipt and dies before the basket update;
    the second's waiting page shows the order and takes the rod out."""
    monkeypatch.setattr(sent_twice, "_same_browser", lambda c: _raising_not(c))
    _dies_taking_the_basket(monkeypatch, off_main_thread_only=True)
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form())
    progress = _progress_url(client.post("/checkout/", checkout_form()))
    assert let_go(first).status_code == 500
    order = PlacedOrder.objects.get(reference=reference)

    _shown_with_its_rod_taken_out(client, progress, order)


def test_the_waiting_page_claim_survives_a_worker_that_dies_while_it_reads_the_lines(
    client,
    first_submit_held,
    rod,
    monkeypatch,
):
    """The sweep recorded the order of a try kept before tries named their basket (so the sweep
    could not take its lines); the waiting page dies during its call to read the order's lines.
    The next poll takes them out all the same."""
    _first_answer_lost(monkeypatch)
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form())
    progress = _progress_url(client.post("/checkout/", checkout_form()))
    assert let_go(first).status_code == 503
    for pending in PendingCheckout.objects.all():
        pending.tries = [{k: v for k, v in kept.items() if k != "basket"} for kept in pending.tries]
        pending.save(update_fields=["tries"])
    _looks_due()
    assert checkout_sweep().placed == 1
    order = PlacedOrder.objects.get()
    real_find = legacy_client.order_find
    calls = []

    def find(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise Killed("worker killed during the lookup")
        return real_find(**kwargs)

    monkeypatch.setattr(legacy_client, "order_find", find)
    client.raise_request_exception = False
    assert client.get(progress).status_code == 500

    _shown_with_its_rod_taken_out(client, progress, order)


def test_a_receipt_the_sweep_recorded_before_this_release_is_taken_out_of_the_basket_on_retry(
    client,
    legacy_api,
    rod,
    answers_lost,
    monkeypatch,
):
    """A receipt the sweep recorded before receipts kept whether their lines were taken
    (lines_taken None): its buyer's retry takes them out, as the release before did."""
    fill_basket(client, rod, 2)
    assert client.post("/checkout/", checkout_form()).status_code == 503
    _looks_due()
    assert checkout_sweep().placed == 1
    PlacedOrder.objects.update(lines_taken=None)  # as the release before recorded it
    order = PlacedOrder.objects.get()
    monkeypatch.setattr(legacy_client, "order_place", answers_lost)  # the real one: answered now

    retry = client.post("/checkout/", checkout_form())

    assert retry.status_code == 302 and retry["Location"] == f"/orders/{order.number}/"
    assert basket_lines(Basket.objects.get()) == {}, "the ordered rods are still in the basket"


class _CacheAway:
    def __getattr__(self, name):
        def away(*args, **kwargs):
            raise RedisConnectionError("Error 111 connecting to redis. Connection refused.")

        return away


def test_a_declined_card_is_told_when_the_cache_is_away(client, legacy_api, rod, monkeypatch):
    """The refusal kept for the waiting page is lost, and the buyer is told all the same."""
    fill_basket(client, rod, 1)
    client.get("/checkout/")
    monkeypatch.setattr(shop.checkout_progress, "cache", _CacheAway())
    client.raise_request_exception = False

    refused = client.post("/checkout/", checkout_form(card_number=DECLINED))

    assert refused.status_code == 402
    assert "Your card was declined" in refused.content.decode()


def _raising_not(client: Client) -> Client:
    other = Client(raise_request_exception=False)
    other.cookies = client.cookies
    return other


def test_the_sweep_takes_a_found_order_out_of_its_buyers_basket_on_any_browser(
    legacy_api, rod, customer, answers_lost, django_user_model
):
    """A signed-in buyer's answer is lost ("very busy, try again"); they go on on their phone.
    The sweep records the order and takes its rod out of the account's basket: the phone's
    checkout finds nothing to order again (a black-box pass paid twice so)."""
    laptop = Client()
    laptop.force_login(customer)
    fill_basket(laptop, rod, 1)
    assert laptop.post("/checkout/", checkout_form()).status_code == 503
    _looks_due()

    assert checkout_sweep().placed == 1

    assert basket_lines(Basket.objects.get(owner=customer)) == {}
    phone = Client()
    phone.force_login(customer)
    assert phone.get("/checkout/")["Location"] == "/basket/"
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 1


def test_the_sweep_takes_nothing_from_a_basket_for_a_buy_now(legacy_api, rod, customer, answers_lost):
    """A buy-now orders from no basket: the sweep leaves the account's basket as it is."""
    from tests.shop.test_buy_now import buy

    buyer = Client()
    buyer.force_login(customer)
    fill_basket(buyer, rod, 1)
    assert buy(buyer, rod, key="lost-1").status_code == 503
    _looks_due()

    assert checkout_sweep().placed == 1

    assert basket_lines(Basket.objects.get(owner=customer)) == {rod.slug: 1}


# The account holder who signs in on the shared browser after the guest (Ada) left it.
BOBS = {"name": "Bob Angler", "email": "angler@example.com", "card_number": "5555555555554444"}


@pytest.mark.parametrize("how", ["guest_removed_it_before_leaving", "merge_capped_by_stock"])
def test_a_guests_order_found_on_the_next_account_holders_checkout_leaves_their_own_rod(
    client, legacy_api, rod, customer, how
):
    """Bob put a rod in his account's basket on his phone. On a shared computer, guest Ada's
    checkout of a rod lost its answer, and her rod never joined Bob's basket (she removed it; or
    the merge capped the line at the one rod left in stock). Bob signs in and checks out his rod:
    Ada's order is found, and told; Bob's basket, his own rod, is left alone."""
    if how == "merge_capped_by_stock":
        Product.objects.filter(pk=rod.pk).update(stock=2)
    phone = Client()
    phone.force_login(customer)
    fill_basket(phone, rod, 1)  # Bob's own
    fill_basket(client, rod, 1)  # Ada's, as a guest on the shared browser
    _placed_but_answer_lost(client, rod)
    if how == "guest_removed_it_before_leaving":
        client.post(f"/basket/lines/{rod.slug}/remove/")
    client.force_login(customer)
    assert basket_lines(Basket.objects.get(owner=customer)) == {rod.slug: 1}  # Bob's rod, only

    response = client.post("/checkout/", checkout_form(**BOBS))

    assert response.status_code == 302 and response["Location"] == "/checkout/"  # Ada's went through
    assert basket_lines(Basket.objects.get(owner=customer)) == {rod.slug: 1}, "Bob's own rod was taken out"


def test_the_sweep_leaves_the_rod_the_next_account_holder_put_in_the_guests_former_basket(
    client, legacy_api, rod, customer, answers_lost
):
    """Guest Ada's checkout loses its answer; she clears her basket and leaves. Bob (no basket of
    his own yet) signs in on the browser, so her basket becomes his account's (the merge's first
    branch), and he adds a rod for himself. The sweep finds Ada's order and leaves the basket her
    try named alone: it is Bob's now."""
    fill_basket(client, rod, 1)
    assert client.post("/checkout/", checkout_form()).status_code == 503
    client.post(f"/basket/lines/{rod.slug}/remove/")
    client.force_login(customer)
    fill_basket(client, rod, 1)  # Bob's own
    _looks_due()

    assert checkout_sweep().placed == 1

    assert basket_lines(Basket.objects.get(owner=customer)) == {rod.slug: 1}, "Bob's own rod was taken out"
