# ruff: noqa: F811  (the fixture imported from the tests it lives in)
"""Signing in or out in another tab while a submit is being placed: the order is placed once, the
submitting page shows it (not a "bad request"), and what it took leaves the basket its lines
went to, so they are not ordered a second time."""

from __future__ import annotations

import pytest
from django.test import Client

from legacy_api.models import Order
from shop.models import Basket, PlacedOrder
from shop.services import basket_add
from tests.shop.conftest import basket_lines
from tests.shop.test_checkout import DECLINED, checkout_form
from tests.shop.test_checkout_sent_twice import first_submit_held  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signed_in(client, customer):
    """Listed before first_submit_held, so the basket it fills is the account's."""
    client.force_login(customer)
    return customer


def _shows_the_order(client: Client, answer, order: PlacedOrder) -> None:
    """The answer leads this browser to the order, whatever session it holds now."""
    assert answer.status_code == 302, answer.content.decode()[:300]
    assert answer["Location"].startswith(f"/orders/{order.number}/")
    page = client.get(answer["Location"], follow=True)
    assert page.status_code == 200
    assert order.number in page.content.decode()


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


def test_a_declined_card_is_told_though_the_session_changed_meanwhile(client, first_submit_held, customer):
    """The refusal's page is shown as it is, not a 400, when the session changed under it."""
    reference, submit, let_go = first_submit_held
    first = submit(checkout_form(card_number=DECLINED))
    client.force_login(customer)

    answer = let_go(first)

    assert answer.status_code == 402, answer.status_code
    assert "declined" in answer.content.decode()
    assert not PlacedOrder.objects.exists()
