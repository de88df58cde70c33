# ruff: noqa: F811  (the fixture imported from the tests it lives in)
"""Signing in or out in another tab while a submit is being placed: the order is placed once, the
submitting page shows it (not a "bad request"), and what it took leaves the basket its lines
went to, so they are not ordered a second time."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from django.db import connection
from django.test import Client

import legacy_client
from legacy_api import services as legacy_services
from legacy_api.models import Order
from shop import checkouts as shop_checkouts
from shop import confirmations
from shop import services as shop_services
from shop.models import Basket, PlacedOrder
from shop.services import basket_add
from tests.shop.conftest import basket_lines, patch_json, post_json
from tests.shop.test_checkout import DECLINED, checkout_form, fill_basket
from tests.shop.test_checkout_sent_twice import _same_browser, first_submit_held  # noqa: F401

# Two requests of one browser at once, each in its own thread against the live server: on
# SQLite's test database, which takes one writer, they wait on "database is locked".
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

PAYMENT_AUTHORISE = legacy_services.payment_authorise


@pytest.fixture
def signed_in(client, customer):
    """Listed before first_submit_held, so the basket it fills is the account's."""
    client.force_login(customer)
    return customer


def _shows_the_order(client: Client, answer, order: PlacedOrder) -> None:
    """The answer says the order is placed, with its number, and grants the browser nothing:
    signing in or out ends what the browser was shown (the order is the email link's to open)."""
    assert answer.status_code == 200, answer.content.decode()[:300]
    page = answer.content.decode()
    assert "data-checkout-placed-elsewhere" in page and order.number in page and order.email in page
    assert client.get(f"/orders/{order.number}/").status_code == 404


def test_a_guest_who_signs_in_while_its_order_is_placed_is_shown_it_and_the_rod_leaves_the_basket(
    client, first_submit_held, customer, reel
):
    """The guest's submit is at the legacy API when the guest signs in (another tab) to an
    account whose basket holds a reel. The merge moves the guest's rod into the account's basket.
    Before: the submit's page was a 400 (its session was gone), and the rod stayed in the
    account's basket, ready for a second, paid order."""
    basket_add(basket=Basket.objects.create(owner=customer), product=reel, quantity=1)
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form())
    client.force_login(customer)  # django.contrib.auth.login: the session's key changes
    assert basket_lines(Basket.objects.get(owner=customer)) == {"spinning-reel": 1, "tourney-casting-rod": 1}

    answer = let_go(first)

    order = PlacedOrder.objects.get(reference=reference)
    assert Order.objects.filter(reference=reference, status=Order.Status.PLACED).count() == 1
    _shows_the_order(client, answer, order)
    assert basket_lines(Basket.objects.get(owner=customer)) == {"spinning-reel": 1}


def test_a_customer_who_signs_out_while_its_order_is_placed_is_shown_it(client, signed_in, first_submit_held):
    """Signed in, the customer submits; another tab signs out (the session is flushed) before the
    answer. The order is placed once and the page shows it, instead of a 400."""
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form())
    client.logout()

    answer = let_go(first)

    order = PlacedOrder.objects.get(reference=reference)
    _shows_the_order(client, answer, order)
    assert basket_lines(Basket.objects.get(owner=signed_in)) == {}


def test_a_submit_after_signing_out_in_another_tab_is_not_told_the_basket_is_empty(client, customer, rod):
    """Signed in, the customer opens the checkout, and another tab signs out (signing out keeps
    the CSRF token, so the form is taken). Before, the submit said "Your basket is empty: add
    something before checking out.", while the basket the page showed waits in the account."""
    client.force_login(customer)
    fill_basket(client, rod, 1)
    shown = re.search(r'name="basket_shown" value="(\w+)"', client.get("/checkout/").content.decode()).group(1)
    client.logout()

    answer = client.post("/checkout/", checkout_form(basket_shown=shown), follow=True)

    told = answer.content.decode()
    assert "Your basket is empty: add something" not in told
    assert "This submit placed no order" in told and "Sign in again to find your basket" in told
    assert basket_lines(Basket.objects.get(owner=customer)) == {rod.slug: 1}
    assert not PlacedOrder.objects.exists()


def test_a_declined_card_is_told_though_the_session_changed_meanwhile(client, first_submit_held, customer):
    """The refusal is told, not a 400, when the session changed under it."""
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form(card_number=DECLINED))
    client.force_login(customer)

    answer = let_go(first)

    # The checkout afresh, the refusal told: the page's own form would carry the CSRF token of
    # the session that ended.
    assert answer.status_code == 302 and answer["Location"] == "/checkout/"
    client.cookies.update(answer.cookies)
    assert "Your card was declined" in client.get("/checkout/").content.decode()
    assert not PlacedOrder.objects.exists()


def _in_thread(target) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run():
        try:
            out["answer"] = target()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def _held_while(monkeypatch, module, name: str, request, meanwhile) -> object:
    """Sends this browser's `request` in a thread, holds it at `module.name` until `meanwhile` (the
    other tab's doing: a sign-in, a basket change) has run, then lets it go; its answer."""
    reached, go = threading.Event(), threading.Event()
    real = getattr(module, name)

    def held(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():  # the held request's call only
            reached.set()
            go.wait(timeout=20)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, held)
    thread, out = _in_thread(request)
    assert reached.wait(timeout=20), f"{name} was never reached"
    meanwhile()
    go.set()
    thread.join(timeout=30)
    return out["answer"]


def test_a_basket_add_in_flight_when_the_guest_signs_in_lands_in_the_accounts_basket(
    client, rod, reel, customer, monkeypatch
):
    """A guest adds a reel (tab 1) while signing in (tab 2). The add had read the guest's basket
    before the merge and writes after it. Before: into the emptied, merged basket (merged_into
    set) that nothing reads again, though the shopper was answered 200."""
    fill_basket(client, rod, 1)
    Basket.objects.create(owner=customer)  # the account's basket: the merge's second branch
    add = lambda: post_json(_same_browser(client), "/api/basket/items", {"product": reel.slug, "quantity": 1})  # noqa: E731

    # The other tab signs in: the guest's rod joins the account's basket.
    answer = _held_while(monkeypatch, shop_services, "_lock_basket", add, lambda: client.force_login(customer))

    assert basket_lines(Basket.objects.get(owner=customer)) == {rod.slug: 1, reel.slug: 1}
    # Answered with the basket it was added to: before, an empty one (the guest's, emptied).
    assert answer.status_code == 200 and answer.json()["count"] == 2, answer.json()


def test_an_order_taken_after_the_merge_leaves_the_accounts_own_units(
    client, legacy_api, make_product, customer, monkeypatch
):
    """The guest orders 3 of the 4 rods; the legacy API places it (stock now 1). Before the take,
    the guest signs in (another tab) to an account whose basket already held 1 rod of its own.
    The merge caps the rod line at what is available (1), so none of the guest's 3 is copied:
    the take, which follows the merge, may take only what the merge added, and leaves that rod."""
    rod = make_product("tourney-casting-rod", stock=4)
    account = Basket.objects.create(owner=customer)
    basket_add(basket=account, product=rod, quantity=1)
    fill_basket(client, rod, 3)
    client.get("/checkout/")

    def signs_in_after_the_order_is_placed():
        rod.refresh_from_db()
        assert rod.available == 1
        client.force_login(customer)

    submit = lambda: _same_browser(client).post("/checkout/", checkout_form())  # noqa: E731
    answer = _held_while(monkeypatch, shop_checkouts, "basket_take_placed", submit, signs_in_after_the_order_is_placed)

    assert answer.status_code == 200  # placed, told without the order's page (above)
    assert PlacedOrder.objects.count() == 1
    assert basket_lines(Basket.objects.get(owner=customer)) == {rod.slug: 1}


def test_a_buy_now_whose_buyer_signed_out_meanwhile_is_answered_201(client, legacy_api, rod, customer, monkeypatch):
    """Buy-now (the monolith's JSON endpoint, used with the browser's session) grants the session
    the order after the legacy API placed it. Before: with the buyer signed out in another tab
    meanwhile, a placed, charged order was answered 400 Bad Request (which a client does not
    retry)."""
    client.force_login(customer)
    key = "review-key-1"
    reference = legacy_client.reference_for_key(key)
    release = threading.Event()
    real = legacy_services.payment_authorise

    def held(**kwargs):
        release.wait(timeout=30)
        return real(**kwargs)

    monkeypatch.setattr(legacy_services, "payment_authorise", held)
    body = {
        "quantity": 1,
        "customer": {"name": "Ada Angler", "email": "ada@example.com"},
        "payment": {"card_number": "4242424242424242"},
    }
    thread, out = _in_thread(
        lambda: _same_browser(client).post(
            f"/shop/{rod.category.slug}/{rod.slug}/orders",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )
    )
    deadline = time.monotonic() + 20
    while not Order.objects.filter(reference=reference).exists():
        assert time.monotonic() < deadline, "never reached the legacy API"
        time.sleep(0.02)
    client.logout()
    release.set()
    thread.join(timeout=30)

    assert PlacedOrder.objects.filter(reference=reference).exists()
    assert out["answer"].status_code == 201, (out["answer"].status_code, out["answer"].content[:200])


def test_a_guests_order_does_not_take_the_accounts_own_rod_after_the_merged_one_was_removed(
    client, legacy_api, rod, customer, monkeypatch
):
    """Shared browser: a guest orders 1 rod. While the take waits, someone signs in (another tab)
    to an account whose basket holds 1 rod of its own: the merge makes it 2. The account holder
    removes the one that is not theirs (quantity 2 -> 1). Before, the guest's order's take still
    took 1 rod there: the account's own."""
    account = Basket.objects.create(owner=customer)
    basket_add(basket=account, product=rod, quantity=1)
    fill_basket(client, rod, 1)
    client.get("/checkout/")

    def signs_in_and_removes_the_guests_rod():
        client.force_login(customer)
        assert basket_lines(account) == {rod.slug: 2}
        assert patch_json(client, f"/api/basket/items/{rod.slug}", {"quantity": 1}).status_code == 200

    submit = lambda: _same_browser(client).post("/checkout/", checkout_form())  # noqa: E731
    _held_while(monkeypatch, shop_checkouts, "basket_take_placed", submit, signs_in_and_removes_the_guests_rod)

    assert PlacedOrder.objects.count() == 1
    assert basket_lines(account) == {rod.slug: 1}, "the guest's order took the account's own rod"


def test_a_guests_removal_in_flight_at_sign_in_leaves_the_accounts_own_units(client, rod, customer, monkeypatch):
    """A guest removes the rod from its basket (tab 1) as someone signs in (tab 2) to an account
    whose basket holds 2 rods of its own; the merge makes it 3. The removal read the guest's
    basket before the merge: made in the account's basket, it deleted the whole line, the
    account's own 2 rods with the guest's 1. It is refused, and the shopper told to look again."""
    account = Basket.objects.create(owner=customer)
    basket_add(basket=account, product=rod, quantity=2)
    fill_basket(client, rod, 1)

    def signs_in():
        client.force_login(customer)
        assert basket_lines(account) == {rod.slug: 3}

    remove = lambda: _same_browser(client).delete(f"/api/basket/items/{rod.slug}")  # noqa: E731
    answer = _held_while(monkeypatch, shop_services, "_lock_basket", remove, signs_in)

    assert (answer.status_code, answer.json()["error"]) == (409, "basket_changed")
    assert basket_lines(account) == {rod.slug: 3}, "the guest's removal took the account's own rods"


def _form_token(page) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert found, "no CSRF token on the page"
    return found.group(1)


def test_a_refusal_shown_after_a_sign_in_does_not_undo_the_sign_ins_csrf_token(client, first_submit_held, customer):
    """A guest's card is declined while the guest signs in in another tab (a real sign-in: Django
    rotates the CSRF token). The refusal's answer must not carry the request's pre-sign-in CSRF
    secret back to the browser, which would have the signed-in tab's next form post refused
    403: the checkout is shown afresh, with the refusal told."""
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form(card_number=DECLINED))
    signed_in = client.post("/accounts/login/", {"username": "angler", "password": "a-long-test-password"})
    assert signed_in.status_code == 302, signed_in.status_code
    page = client.get("/checkout/")  # tab 2, signed in: its form carries the new token
    assert page.status_code == 200, page.status_code
    token = _form_token(page)

    answer = let_go(first)
    assert answer.status_code == 302 and answer["Location"] == "/checkout/"
    assert "csrftoken" not in answer.cookies
    client.cookies.update(answer.cookies)  # the browser takes tab 1's answer's cookies (its message)
    assert "Your card was declined" in client.get("/checkout/").content.decode()

    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    posted = strict.post("/checkout/", {**checkout_form(), "csrfmiddlewaretoken": token})
    assert posted.status_code != 403, "the signed-in tab's form is refused: its CSRF cookie was put back"


def test_the_placed_page_shown_after_a_sign_in_meanwhile_is_not_cacheable_nor_frameable(
    client, first_submit_held, customer, reel
):
    basket_add(basket=Basket.objects.create(owner=customer), product=reel, quantity=1)
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form())
    client.force_login(customer)

    answer = let_go(first)

    assert PlacedOrder.objects.filter(reference=reference).exists()
    assert "data-checkout-placed-elsewhere" in answer.content.decode()
    # The page names the buyer, the address and the total: the checkout view is never_cache,
    # and every page of the shop is sent with X-Frame-Options.
    missing = [
        h
        for h, ok in (
            ("Cache-Control", "no-store" in answer.get("Cache-Control", "")),
            ("X-Frame-Options", answer.get("X-Frame-Options") == "DENY"),
        )
        if not ok
    ]
    assert missing == [], dict(answer.headers)


def test_one_accounts_basket_checked_out_on_two_browsers_at_once_is_ordered_once(
    client, signed_in, first_submit_held, mailoutbox, monkeypatch
):
    """An account signed in on two browsers (a phone and a laptop) checks out its one basket on
    both at once. Each browser has a checkout reference of its own, so the legacy API cannot make
    the two submits one order: the second is told the basket is being ordered, and sends nothing."""
    reference, submit, let_go = first_submit_held
    laptop = Client()
    laptop.force_login(signed_in)
    assert laptop.get("/checkout/").status_code == 200
    first = submit(checkout_form())
    # Only the phone's submit is held at the legacy API: the laptop's would go straight through.
    monkeypatch.setattr(legacy_services, "payment_authorise", PAYMENT_AUTHORISE)

    second = laptop.post("/checkout/", checkout_form(name="Ada on her laptop"))

    # Before: a second order of the same basket, and the card charged twice.
    assert second.status_code == 409
    assert "being ordered in another browser" in second.content.decode()
    assert let_go(first).status_code == 302
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 1
    assert PlacedOrder.objects.get().reference == reference and len(mailoutbox) == 1
    assert basket_lines(Basket.objects.get(owner=signed_in)) == {}
    # Once that order is placed the laptop's checkout goes on as usual: the basket is empty.
    assert laptop.get("/checkout/")["Location"] == "/basket/"


def _second_browser_at_checkout(user) -> tuple[Client, str]:
    """Another browser signed in to the account, its checkout page open: the browser, and the
    basket the page showed (`basket_shown`)."""
    laptop = Client()
    laptop.force_login(user)
    shown = re.search(r'name="basket_shown" value="(\w+)"', laptop.get("/checkout/").content.decode()).group(1)
    return laptop, shown


def test_the_other_browsers_submit_while_the_first_order_is_confirmed_orders_nothing(
    client, signed_in, legacy_api, rod, mailoutbox, monkeypatch
):
    """The phone's order is placed, and its confirmation email is being sent (a slow mail server)
    when the laptop submits the basket its page showed. Before, the phone's checkout was settled
    with its receipt and the rod taken out of the basket only after the email: the laptop found
    no checkout of the basket open and the rod still in it, and ordered it a second time."""
    fill_basket(client, rod, 1)
    client.get("/checkout/")
    laptop, shown = _second_browser_at_checkout(signed_in)
    real_send = confirmations.confirmation_send
    answers = {}

    def mail_server_slow(number, kind=confirmations.CONFIRMED):
        if "laptop" not in answers:
            answers["laptop"] = laptop.post("/checkout/", checkout_form(name="Ada on her laptop", basket_shown=shown))
        return real_send(number, kind)

    monkeypatch.setattr(confirmations, "confirmation_send", mail_server_slow)

    assert client.post("/checkout/", checkout_form()).status_code == 302

    assert answers["laptop"].status_code in (302, 409)
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 1
    assert PlacedOrder.objects.count() == 1 and len(mailoutbox) == 1


def test_a_basket_ordered_on_the_other_browser_after_this_submit_read_it_is_not_ordered_again(
    client, signed_in, legacy_api, rod, monkeypatch
):
    """The laptop's submit has read the basket when the phone's order is placed and takes the rod
    out of it, all before the laptop asks whether a checkout of the basket is open: none is any
    more, and the rod it read was ordered a second time."""
    fill_basket(client, rod, 1)
    client.get("/checkout/")
    laptop, shown = _second_browser_at_checkout(signed_in)
    real_note = shop_checkouts.pending_checkout_note
    answers = {}

    def phone_first(**kwargs):
        if not answers:
            answers["phone"] = None  # the phone's own note goes straight on
            answers["phone"] = client.post("/checkout/", checkout_form())
        return real_note(**kwargs)

    monkeypatch.setattr(shop_checkouts, "pending_checkout_note", phone_first)

    laptop_answer = laptop.post("/checkout/", checkout_form(name="Ada on her laptop", basket_shown=shown))

    assert answers["phone"].status_code == 302
    assert laptop_answer.status_code == 409
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 1
    assert PlacedOrder.objects.count() == 1
