"""A new shopper buys in a real Chromium: home → category → product → basket → checkout →
confirmation; then the merchant finds the order, the order API has it, and stock went down."""

from __future__ import annotations

import re

import pytest

import legacy_client
from shop.models import PlacedOrder, Product
from tests.shop.conftest import MERCHANT_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def checkout_form_fill(page) -> None:
    """The checkout form as a shopper in the US fills it, with a card that is approved."""
    page.get_by_label("Full name").fill("Ada Angler")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Address").fill("1 Lake Road")
    page.get_by_label("Country").select_option("United States")
    page.get_by_label("City").fill("Hayward")
    page.get_by_label("State").select_option("WI")
    page.get_by_label("ZIP code").fill("54843")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")


def test_a_new_shopper_buys_a_rod_and_the_merchant_sees_the_order(demo_shop_url, browser):
    from playwright.sync_api import expect

    stock_before = Product.objects.get(slug="tourney-casting-rod").stock
    page = browser.new_page()
    page.set_default_timeout(20_000)

    page.goto(f"{demo_shop_url}/")
    expect(page).to_have_url(f"{demo_shop_url}/shop/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Gear that lands")

    page.get_by_role("navigation", name="Categories").get_by_role("link", name="Rods", exact=True).click()
    expect(page).to_have_url(f"{demo_shop_url}/shop/rods/")
    page.get_by_role("link", name=re.compile("Tourney Casting Rod")).click()
    expect(page).to_have_url(f"{demo_shop_url}/shop/rods/tourney-casting-rod/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Tourney Casting Rod")
    expect(page.get_by_role("img", name="Tourney Casting Rod")).to_be_visible()

    page.get_by_label("Quantity").fill("2")
    page.get_by_role("button", name="Add to basket").click()
    expect(page.locator("[data-basket-count]")).to_have_text("2")
    page.get_by_role("link", name="View basket").click()

    expect(page).to_have_url(f"{demo_shop_url}/basket/")
    expect(page.get_by_role("link", name="Tourney Casting Rod", exact=True)).to_be_visible()
    page.get_by_role("link", name="Checkout", exact=True).click()

    expect(page).to_have_url(f"{demo_shop_url}/checkout/")
    checkout_form_fill(page)
    page.get_by_role("button", name=re.compile("Place order")).click()

    expect(page).to_have_url(re.compile(r"/orders/[^/]+/$"))
    number = page.locator("[data-order-number]").inner_text()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {number}")
    expect(page.locator("[data-processing-ms]")).to_have_text(re.compile(r"^\d+ ms$"))
    expect(page.get_by_role("table")).to_contain_text("Tourney Casting Rod")
    expect(page.locator("[data-basket-count]")).to_have_text("0")

    # The storefront's receipt and the order of record, over HTTP.
    order = PlacedOrder.objects.get(number=number)
    record = legacy_client.order_get(order_id=order.legacy_id)
    assert record.status == 200
    assert record.data["number"] == number
    assert [(line["product"], line["quantity"]) for line in record.data["lines"]] == [("tourney-casting-rod", 2)]
    assert Product.objects.get(slug="tourney-casting-rod").stock == stock_before - 2

    # The merchant signs in to the admin and finds the order.
    admin = browser.new_page()
    admin.set_default_timeout(20_000)
    admin.goto(f"{demo_shop_url}/admin/")
    admin.get_by_label("Username").fill("merchant")
    admin.get_by_label("Password").fill(MERCHANT_PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    expect(admin.get_by_role("heading", name="Shop administration")).to_be_visible()
    admin.goto(f"{demo_shop_url}/admin/shop/placedorder/")
    expect(admin.get_by_role("link", name=number)).to_be_visible()
    admin.goto(f"{demo_shop_url}/admin/legacy_api/order/")
    expect(admin.locator("#result_list")).to_contain_text(number)


def test_a_product_page_opened_before_signing_in_in_another_tab_still_adds_to_the_basket(
    demo_shop_url, browser, customer
):
    """Signing in gives the browser a new CSRF token. Before, a product page opened before a
    sign-in in another tab answered every "Add to basket" with "That did not work. Please try
    again.", and trying again never worked: the script sent the token the page was rendered with."""
    from playwright.sync_api import expect

    context = browser.new_context()
    product_page = context.new_page()
    product_page.set_default_timeout(20_000)
    product_page.goto(f"{demo_shop_url}/shop/reels/spinning-reel/")
    other_tab = context.new_page()
    other_tab.set_default_timeout(20_000)
    other_tab.goto(f"{demo_shop_url}/accounts/login/")
    other_tab.get_by_label("Username").fill(customer.username)
    other_tab.get_by_label("Password").fill("a-long-test-password")
    other_tab.get_by_role("button", name="Sign in").click()
    expect(other_tab).to_have_url(f"{demo_shop_url}/shop/")

    product_page.get_by_role("button", name="Add to basket").click()

    expect(product_page.locator("[data-toast]")).to_contain_text("Added 1 × Spinning Reel")
    expect(product_page.locator("[data-form-error]")).to_be_hidden()
    # In the basket of the account now signed in on this browser, as the basket page shows it.
    other_tab.goto(f"{demo_shop_url}/basket/")
    expect(other_tab.get_by_role("heading", name="Spinning Reel")).to_be_visible()
    context.close()


def test_adding_to_the_basket_with_the_keyboard_keeps_the_focus_and_announces_it(demo_shop_url, browser):
    """The button is disabled while the line is sent, which drops its focus: it gets it back. The
    toast is a live region already in the page when it is written to, and it stays while the
    keyboard is on its link."""
    from playwright.sync_api import expect

    page = browser.new_page()
    page.clock.install()  # the toast's 6 s are moved past, not waited out
    page.set_default_timeout(20_000)
    page.goto(f"{demo_shop_url}/shop/reels/spinning-reel/")
    toast = page.locator("[data-toast]")
    expect(page.locator('[data-toast][role="status"]')).to_be_attached()
    expect(toast).to_be_empty()

    page.get_by_label("Quantity").focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(toast).to_contain_text("Added 1 × Spinning Reel")
    expect(page.get_by_role("button", name="Add to basket")).to_be_focused()

    page.get_by_role("link", name="View basket").focus()
    page.clock.fast_forward(7_000)  # past the toast's 6 s
    expect(page.get_by_role("link", name="View basket")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{demo_shop_url}/basket/")


def test_a_form_shown_again_with_an_error_puts_the_focus_on_the_field_in_error(demo_shop_url, browser):
    # Found by the server only (the two passwords differ): without the focus moved there, a
    # screen reader starts again at the top of the page and never says what went wrong.
    from playwright.sync_api import expect

    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{demo_shop_url}/accounts/signup/")
    page.get_by_label("Username").fill("new-angler")
    page.get_by_label("Email").fill("new-angler@example.com")
    page.get_by_label("Password", exact=True).fill("a-long-test-password")
    page.get_by_label("Password confirmation").fill("another-long-password")
    page.get_by_role("button", name="Create account").click()

    expect(page.locator("#id_password2_error")).to_be_visible()
    expect(page.get_by_label("Password confirmation")).to_be_focused()
    page.close()
