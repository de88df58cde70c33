"""The order lookup and the emailed order link in Chromium on a phone: the card's last four
digits are asked for, a wrong one is "could not find", and the link opens the order in a
browser that never looked it up."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client

from tests.shop.test_buy_now import buy

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def adas_order(live_shop_url, rod) -> str:
    """Ada bought a rod with a card ending 5556; her confirmation email is in the outbox."""
    answer = buy(Client(), rod, key="browser-key-1", payment={"card_number": "4000 0566 5566 5556"})
    assert answer.status_code == 201, answer.content
    return answer.json()["number"]


def test_a_buyer_on_a_phone_finds_her_order_with_the_cards_last_four_digits(live_shop_url, browser, adas_order):
    from playwright.sync_api import expect

    page = browser.new_page(viewport=PHONE)
    page.set_default_timeout(20_000)
    page.goto(f"{live_shop_url}/orders/lookup/")
    page.get_by_label("Order number").fill(adas_order.lower())
    page.get_by_label("Email used for the order").fill("ADA@example.com")
    page.get_by_label("Last four digits of the card you paid with").fill("4242")
    page.get_by_role("button", name="Find my order").click()

    expect(page.get_by_role("alert")).to_have_text("We could not find an order with that number, email and card.")
    field = page.get_by_label("Last four digits of the card you paid with")
    box = field.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box

    field.fill("5556")
    page.get_by_role("button", name="Find my order").click()

    expect(page).to_have_url(f"{live_shop_url}/orders/{adas_order}/")
    expect(page.locator("[data-order-number]")).to_have_text(adas_order)


def test_the_emailed_link_opens_the_order_in_a_browser_that_never_looked_it_up(live_shop_url, browser, adas_order):
    from playwright.sync_api import expect

    url = re.search(r"https?://\S+/orders/\S+", mail.outbox[-1].body).group(0)
    parts = urlsplit(url)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(20_000)

    page.goto(f"{live_shop_url}{parts.path}?{parts.query}")

    expect(page).to_have_url(f"{live_shop_url}/orders/{adas_order}/")
    expect(page.locator("[data-order-number]")).to_have_text(adas_order)
    stranger = browser.new_context(viewport=PHONE).new_page()
    assert stranger.goto(f"{live_shop_url}/orders/{adas_order}/").status == 404
    tampered = stranger.goto(f"{live_shop_url}{parts.path}?{parts.query[:-1]}{'A' if parts.query[-1] != 'A' else 'B'}")
    assert tampered.status == 403
    expect(stranger.get_by_role("heading", level=1)).to_have_text("This link cannot open an order")
    context.close()


@pytest.mark.parametrize("viewport", [{"width": 320, "height": 700}, PHONE], ids=["320px", "390px"])
def test_an_order_s_lines_stay_inside_a_phone_s_width(live_shop_url, browser, make_product, viewport):
    """Its four columns (product, quantity, price, total) ran 27 px past a 320 px screen for three
    $189.99 waders: on a phone the unit price goes under the product, as in the basket."""
    from playwright.sync_api import expect

    waders = make_product("breathable-chest-waders", title="Breathable Chest Waders", price_cents=18999)
    answer = buy(Client(), waders, key="browser-key-waders", quantity=3)
    assert answer.status_code == 201, answer.content
    parts = urlsplit(re.search(r"https?://\S+/orders/\S+", mail.outbox[-1].body).group(0))
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(20_000)

    page.goto(f"{live_shop_url}{parts.path}?{parts.query}")

    expect(page.locator("[data-order-number]")).to_have_text(answer.json()["number"])
    expect(page.get_by_text("$189.99 each")).to_be_visible()
    expect(page.get_by_role("cell", name="$569.97", exact=True).first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
