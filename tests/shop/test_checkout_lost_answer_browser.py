"""A storefront checkout on a bad mobile network: the order is placed, but its answer is lost on
the way back to the phone. The buyer who comes back to the checkout or the basket is told of the
order placed a moment ago, not just "Your basket is empty", which reads as nothing ordered and
sends them to add the rod again and pay a second time."""

from __future__ import annotations

import re

import pytest

from shop.models import PlacedOrder
from tests.shop.test_browser import checkout_form_fill

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_checkout_whose_answer_was_lost_is_told_of_on_the_checkout_and_the_basket(demo_shop_url, browser):
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(f"{demo_shop_url}/shop/rods/tourney-casting-rod/")
    page.get_by_role("button", name="Add to basket").click()
    expect(page.locator("[data-basket-count]")).to_have_text("1")
    page.goto(f"{demo_shop_url}/checkout/")
    checkout_form_fill(page)

    placed = []

    def lose_the_answer(route):
        if route.request.method == "POST" and not placed:
            placed.append(route.fetch(max_redirects=0))  # the shop places the order
            route.abort("connectionreset")  # and the phone never hears of it
        else:
            route.continue_()

    page.route("**/checkout/", lose_the_answer)
    page.get_by_role("button", name=re.compile("Place order")).click()
    page.wait_for_url(re.compile("chrome-error"))
    order = PlacedOrder.objects.get()

    # Back to the checkout: that order, with what the message says of it.
    page.goto(f"{demo_shop_url}/checkout/")
    expect(page).to_have_url(f"{demo_shop_url}/orders/{order.number}/")
    expect(page.locator(".messages")).to_contain_text(f"Your order {order.number} was placed a moment ago")

    # Or to the basket: empty, and saying why.

    page.goto(f"{demo_shop_url}/basket/")
    expect(page.locator("main")).to_contain_text(f"Your order {order.number} was placed a moment ago")
    expect(page.get_by_role("link", name=order.number)).to_have_attribute("href", f"/orders/{order.number}/")
    assert PlacedOrder.objects.count() == 1
