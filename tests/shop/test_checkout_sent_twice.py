"""A checkout sent twice at once (a double click, two tabs): the second submit's page, which is
the one the browser shows, waits for the first's outcome and then shows it; one order, one
charge, one email, and nothing logged as refused for the second."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone

import legacy_client
from events.models import Event
from legacy_api import services as legacy_services
from legacy_api.models import Order
from legacy_client import OrderAnswer, Outcome
from shop.checkout_errors import CheckoutPlacedEarlier
from shop.checkout_events import SOURCE
from shop.checkout_progress import _refusal_key
from shop.checkout_reference import SESSION_CHECKOUT_REFERENCE
from shop.checkout_sweep import checkout_sweep
from shop.checkouts import checkout_place
from shop.delivery import Delivery
from shop.models import Basket, PendingCheckout, PlacedOrder
from tests.shop.conftest import basket_lines
from tests.shop.test_checkout import DECLINED, checkout_form, fill_basket

# Two requests of one browser at once, each in its own thread against the live server: on
# SQLite's test database, which takes one writer, they wait on "database is locked".
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _same_browser(client: Client) -> Client:
    other = Client()
    other.cookies = client.cookies
    return other


def _progress_url(page) -> str:
    html = page.content.decode()
    assert "data-checkout-placing" in html
    # Without JavaScript the page refreshes itself; with it, its script asks (_still_placing).
    refresh = re.search(r'<noscript><meta http-equiv="refresh" content="\d+;url=([^"]+)"></noscript>', html)
    return refresh.group(1).replace("&amp;", "&")


def _still_placing(client: Client, progress: str) -> bool:
    answer = client.get(progress, HTTP_ACCEPT="application/json")
    assert answer.status_code == 200 and answer["Cache-Control"].startswith("max-age=0")
    return answer.json()["placing"]


@pytest.fixture
def first_submit_held(client, legacy_api, rod, monkeypatch):
    """The first submit of a double click is at the legacy API, its order row claimed and its
    card not yet authorised, until the test lets it go; its answer, once it has one."""
    fill_basket(client, rod, 1)
    client.get("/checkout/")
    reference = client.session[SESSION_CHECKOUT_REFERENCE]
    release = threading.Event()
    real = legacy_services.payment_authorise

    def held(**kwargs):
        release.wait(timeout=30)
        return real(**kwargs)

    monkeypatch.setattr(legacy_services, "payment_authorise", held)
    answers: dict = {}

    def submit(form: dict) -> threading.Thread:
        def run():
            try:
                answers["first"] = _same_browser(client).post("/checkout/", form)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 20
        while not Order.objects.filter(reference=reference).exists():
            assert time.monotonic() < deadline, "the first submit never reached the legacy API"
            time.sleep(0.02)
        return thread

    def let_go(thread: threading.Thread) -> object:
        release.set()
        thread.join(timeout=30)
        return answers["first"]

    return reference, submit, let_go


def test_the_second_submit_waits_for_the_first_and_shows_the_one_order(client, first_submit_held, mailoutbox):
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form())

    second = client.post("/checkout/", checkout_form())

    # Before: "Our order service is very busy right now ... try again" (503).
    assert second.status_code == 202
    assert "it was sent twice, and is placed once" in second.content.decode()
    progress = _progress_url(second)
    assert client.get(progress).status_code == 202  # still being placed: the page waits on
    assert _still_placing(client, progress) is True
    assert let_go(first).status_code == 302
    assert _still_placing(client, progress) is False  # which grants and tells nothing yet:

    shown = client.get(progress)

    order = PlacedOrder.objects.get()
    assert shown.status_code == 302 and shown["Location"] == f"/orders/{order.number}/"
    assert "Your order is placed, and charged once" in client.get(shown["Location"]).content.decode()
    assert order.reference == reference
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 1 and len(mailoutbox) == 1
    assert not PendingCheckout.objects.exists()
    # The second try was no refusal: the log holds the order, and nothing failed.
    assert list(Event.objects.filter(source=SOURCE).values_list("status", flat=True)) == ["PLACED"]


def test_when_the_first_submit_is_declined_the_waiting_page_says_nothing_was_placed(client, first_submit_held):
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form(card_number=DECLINED))
    progress = _progress_url(client.post("/checkout/", checkout_form(card_number=DECLINED)))
    assert let_go(first).status_code == 402
    # Kept for this browser by a keyed hash of its session: its key would sign anyone in.
    kept = cache.get(_refusal_key(reference))
    assert kept[1].startswith("Your card was declined") and client.session.session_key not in kept[0]

    shown = client.get(progress)

    assert shown.status_code == 302 and shown["Location"] == "/checkout/"
    page = client.get("/checkout/").content.decode()
    # With the first submit's own reason, which its page (never shown) said.
    assert "Your order was not placed. Your card was declined." in page and "Your basket is kept" in page
    assert not PlacedOrder.objects.exists() and not PendingCheckout.objects.exists()


def test_the_waiting_page_shows_no_order_to_another_browser(client, first_submit_held):
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form())
    progress = _progress_url(client.post("/checkout/", checkout_form()))
    let_go(first)
    number = PlacedOrder.objects.get().number

    stranger = Client()
    assert _still_placing(stranger, progress) is False
    shown = stranger.get(progress)

    assert shown.status_code == 302 and number not in shown["Location"]
    told = stranger.get(shown["Location"], follow=True).content.decode()
    assert "not placed" not in told and "went through" not in told and number not in told
    assert client.get(progress)["Location"] == f"/orders/{number}/"


def test_in_a_browser_the_waiting_page_shows_the_order_once_placed(client, first_submit_held, live_server, browser):
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form())
    progress = _progress_url(client.post("/checkout/", checkout_form()))
    context = browser.new_context()
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    page = context.new_page()
    page.goto(f"{live_server.url}{progress}")
    page.evaluate("window.notReloaded = true")
    page.wait_for_timeout(2500)  # more than one look: still placing, the page stays as it is
    assert page.evaluate("window.notReloaded") is True

    let_go(first)

    page.wait_for_url(f"{live_server.url}/orders/*/", timeout=20_000)
    assert "Your order is placed, and charged once" in page.content()
    assert PlacedOrder.objects.get().reference == reference
    context.close()


def _first_answer_lost(monkeypatch) -> None:
    """The first submit (the fixture's thread) reaches the legacy API, which places the order,
    but its answer never comes back (a read timeout, a worker killed mid-call). Submits from
    the test's own thread are answered as usual."""
    place = legacy_client.order_place

    def lose_off_the_main_thread(**kwargs):
        answer = place(**kwargs)
        if threading.current_thread() is not threading.main_thread():
            return OrderAnswer(Outcome.UNKNOWN, detail="timed out")
        return answer

    monkeypatch.setattr(legacy_client, "order_place", lose_off_the_main_thread)


def _looks_due() -> None:
    PendingCheckout.objects.update(look_after=timezone.now() - timedelta(seconds=1))


def test_a_guest_who_signs_in_while_waiting_is_not_told_the_order_was_not_placed(client, first_submit_held, customer):
    """A guest double-clicks; the second submit's page waits on the first. Meanwhile the guest
    signs in (another tab). The first places the order and charges the card, yet the waiting
    page says "Your order was not placed ... please order again": checkout_progress treats the
    browser as a stranger (started_by != the account) and the page turns "not this session's"
    into "not placed". The checkout form itself says "went through after all" here."""
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form())
    progress = _progress_url(client.post("/checkout/", checkout_form()))
    client.force_login(customer)
    assert client.get(progress).status_code == 202  # still being placed: the page waits on
    let_go(first)
    assert Order.objects.filter(reference=reference, status=Order.Status.PLACED).count() == 1
    assert PlacedOrder.objects.filter(reference=reference).exists()

    shown = client.get(progress)

    # Told as the checkout tells it: placed, confirmed to the guest's address, shown to nobody here.
    assert shown.status_code == 302 and shown["Location"] == "/checkout/"
    page = client.get(shown["Location"], follow=True).content.decode()
    assert "Your order was not placed" not in page and "went through after all" in page
    # Not "your basket is kept": the first try's own request took the rod out of the basket it
    # joined on sign-in.
    assert "Your basket is kept" not in page and "Please check your basket" in page
    assert basket_lines(Basket.objects.get(owner=customer)) == {}


def test_the_sweep_records_the_address_of_the_try_that_placed_not_of_the_one_answered_in_progress(
    client, first_submit_held, monkeypatch
):
    """Two tabs send the same name, email, card and basket (one legacy body) with different
    addresses. The first places the order and loses its answer; the second is answered
    "in progress", and its try is closed without a mark, so the sweep takes it (the latest
    matching try) as the one that placed the order and ships to its address."""
    _first_answer_lost(monkeypatch)
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form())  # 1 Lake Road, Hayward
    second = client.post("/checkout/", checkout_form(address_line="9 New Street", city="Oakland"))
    assert second.status_code == 202  # answered "in progress": it placed nothing, and never will
    assert let_go(first).status_code == 503  # placed at the legacy API, answer lost

    _looks_due()
    assert checkout_sweep().placed == 1

    order = PlacedOrder.objects.get()
    assert (order.address_line, order.city) == ("1 Lake Road", "Hayward")


def test_a_guests_order_is_recorded_though_a_signed_in_tab_was_answered_in_progress(
    client, first_submit_held, customer, monkeypatch
):
    """The guest's submit places the order and loses its answer; meanwhile someone signs in on
    the browser and sends the same body, answered "in progress" (it placed nothing). Its try,
    closed without a mark, is a second buyer's match for the order, so the sweep never records
    it: no receipt, no email, a PendingCheckout looked at again for ever."""
    _first_answer_lost(monkeypatch)
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form())
    client.force_login(customer)
    assert client.post("/checkout/", checkout_form()).status_code == 202
    let_go(first)
    assert Order.objects.filter(reference=reference, status=Order.Status.PLACED).count() == 1

    _looks_due()
    result = checkout_sweep()

    assert result.as_dict() == {"placed": 1, "not_placed": 0, "in_doubt": 0}
    assert PlacedOrder.objects.get().customer is None and not PendingCheckout.objects.exists()


def test_an_order_the_sweep_found_is_taken_out_of_the_basket_once_the_waiting_page_shows_it(
    client, first_submit_held, rod, monkeypatch
):
    """The first submit placed the order and lost its answer; the sweep recorded it. The page
    that waits shows it, and its lines leave the basket: the next checkout is not a second
    order of the same rod (a black-box pass paid twice so)."""
    _first_answer_lost(monkeypatch)
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form())
    progress = _progress_url(client.post("/checkout/", checkout_form()))
    assert let_go(first).status_code == 503  # placed at the legacy API, answer lost
    assert client.get(progress).status_code == 202  # in doubt until the sweep looks
    _looks_due()
    assert checkout_sweep().placed == 1
    order = PlacedOrder.objects.get()

    shown = client.get(progress)

    assert shown["Location"] == f"/orders/{order.number}/"
    assert basket_lines(Basket.objects.get()) == {}
    # The checkout opened again shows that order (its basket emptied by it), not an empty basket to fill again.
    again = client.get("/checkout/")
    assert again.status_code == 302 and again["Location"] == f"/orders/{order.number}/"
    # Once only: a rod added afterwards stays, however often the page is opened again.
    fill_basket(client, rod, 1)
    assert client.get(progress)["Location"] == f"/orders/{order.number}/"
    assert basket_lines(Basket.objects.get()) == {rod.slug: 1}
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 1


def test_a_retry_after_the_waiting_page_took_the_lines_takes_nothing_more(client, first_submit_held, rod, monkeypatch):
    """Another tab of the same browser retries the checkout with the same reference after the
    waiting page was answered with the order the sweep found: the basket loses its units once."""
    _first_answer_lost(monkeypatch)
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form())
    progress = _progress_url(client.post("/checkout/", checkout_form()))
    let_go(first)
    _looks_due()
    checkout_sweep()
    assert client.session[SESSION_CHECKOUT_REFERENCE] == reference  # as the other tab sends it
    client.get(progress)  # takes the rod out of the basket
    fill_basket(client, rod, 2)  # and the buyer adds two more
    basket = Basket.objects.get()
    with pytest.raises(CheckoutPlacedEarlier) as earlier:
        checkout_place(
            basket=basket,
            customer=None,
            delivery=Delivery(
                name="Ada Angler",
                email="ada@example.com",
                address_line="1 Lake Road",
                city="Hayward",
                postcode="54843",
                country="United States",
                region="WI",
            ),
            card_number="4242 4242 4242 4242",
            reference=reference,
        )

    # The basket changed since (two rods), so the legacy API answers the reference is another
    # body's, and the checkout finds its earlier order: the rod it took is not taken again.
    assert earlier.value.order.reference == reference and PlacedOrder.objects.count() == 1
    assert basket_lines(Basket.objects.get()) == {rod.slug: 2}


@pytest.mark.parametrize(
    "query",
    ["", "?reference=", "?reference=not-a-reference", "?reference=" + "x" * 5000],
    ids=["none", "empty", "made-up", "very-long"],
)
def test_the_waiting_page_for_no_checkout_of_this_browser_says_nothing_false(client, query):
    shown = client.get(f"/checkout/placing/{query}")

    assert shown.status_code == 302 and shown["Location"] == "/checkout/"
    page = client.get(shown["Location"], follow=True).content.decode()
    assert "not placed" not in page
