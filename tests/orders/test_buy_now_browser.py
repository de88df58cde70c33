"""The buy-now page in a real browser: a buyer fills the form, gets an order number at once and
watches it complete, with the hot path, a worker and the legacy API all running for real. The
units left never count the buyer's own order as still on sale, and outside an open sale a line
of what to do stands in for the form."""

from __future__ import annotations

import re
import time

import pytest

from orders.models import HotOrder, SaleAllocation
from tests.edge.conftest import ensure_origins
from tests.orders.all_in_one import all_in_one_start
from tests.orders.conftest import APPROVED_CARD, DECLINED_CARD, PREFIX
from tests.orders.sale_page import sale_page_buy

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def page_looking_on_demand(browser, **options):
    """A new page whose clock is Playwright's (time flows as it does, unless moved on), so that
    its look at the stock figures every 5 s can be brought forward (`looks_until`)."""
    page = browser.new_page(**options)
    page.clock.install()
    return page


def looks_until(page, shown, *, timeout: float = 20.0) -> None:
    """Brings the page's looks at the stock figures (every 5 s) forward, its clock moved 5 s on
    about once a second, until `shown(ms)` (an expectation, waiting at most `ms`) holds. The
    figures themselves may lag a merchant's change by a few seconds (the remaining units are
    cached for 5 s): each look asks the server again."""
    deadline = time.monotonic() + timeout
    while True:
        page.clock.fast_forward(5_000)
        try:
            shown(1_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def next_look_shows(page, words: str) -> None:
    """The page's next look at the stock figures, brought forward, shows `words` in the stock
    line: the line is blanked first, and only a look's answer writes it again."""
    from playwright.sync_api import expect

    page.locator("#stock-text").evaluate("el => { el.textContent = ''; }")
    page.clock.fast_forward(5_000)
    expect(page.locator("#stock-text")).to_have_text(words, timeout=20_000)


def test_buyer_orders_from_the_buy_now_page_and_sees_it_complete(
    processes, process_env, allocation, legacy_api, worker_env, browser
):
    from playwright.sync_api import expect

    legacy_api.start()
    processes.celery_worker(worker_env, concurrency=1)
    hotpath = processes.granian("config.wsgi_hotpath", process_env)

    page = browser.new_page()
    page.goto(hotpath + PREFIX)
    expect(page.locator("#stock-text")).to_contain_text("20")
    page.fill("#name", "Ann Angler")
    page.fill("#email", "not-an-email")
    page.fill("#card", APPROVED_CARD)
    page.click("#buy-button")
    expect(page.locator('[data-for="customer.email"]')).to_contain_text("valid email")
    expect(page.locator("#result")).to_be_hidden()
    # A screen reader hears the error with the field, where the focus is taken back to.
    expect(page.locator("#email")).to_be_focused()
    expect(page.locator("#email")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("textbox", name="Email")).to_have_accessible_description(re.compile("valid email"))
    expect(page.locator("#name")).not_to_have_attribute("aria-invalid", "true")

    page.fill("#email", "ann@example.com")
    page.select_option("#quantity", "2")
    page.click("#buy-button")
    expect(page.locator("#order-number")).to_have_text(re.compile(r"^T\d+$"))
    expect(page.locator("#result")).to_be_focused()  # not lost with the disabled button
    # At once, before the stock figures (fed by the log) have counted the order.
    expect(page.locator("#stock-text")).to_have_text("Hurry — only 18 left")
    expect(page.locator("#order-state")).to_have_text("complete", timeout=60_000)
    expect(page.locator("#order-detail")).to_contain_text("confirmed")
    expect(page.locator("#stock-text")).to_have_text("Hurry — only 18 left")

    order = HotOrder.objects.get()  # one order: the refused attempt wrote nothing
    assert (order.quantity, order.customer_email, order.status) == (2, "ann@example.com", "complete")


def sale_route_add() -> None:
    from django.core.management import call_command

    ensure_origins()  # created by a data migration, which a transactional test's flush removed
    call_command("edge_route", "add", "muskie-sale", PREFIX + "*", "--origin", "hotpath", "--enable")


def _all_in_one(processes, process_env, worker_env) -> str:
    """The all-in-one server (edge middleware, monolith, hot path, legacy API) and a worker."""
    base = all_in_one_start(processes, process_env)
    processes.celery_worker({**worker_env, "LEGACY_API_URL": base + "/legacy-api"}, concurrency=1)
    return base


@pytest.mark.parametrize("sale_still_open", [True, False], ids=["sale-open", "sale-closed"])
def test_a_stale_sale_page_after_the_route_is_disabled_shows_the_placed_order_not_failed(
    processes, process_env, allocation, worker_env, sale_still_open, browser
):
    from django.core.management import call_command
    from playwright.sync_api import expect

    sale_route_add()
    base = _all_in_one(processes, process_env, worker_env)

    def merchant_switches_off() -> None:
        call_command("edge_route", "disable", "muskie-sale")
        if not sale_still_open:
            allocation.is_hot = False
            allocation.save()

    page = browser.new_page()
    page.goto(base + PREFIX)
    expect(page.locator(".sale-banner")).to_contain_text("Flash sale")
    # The merchant switches the route off while this page is open; with the sale closed
    # too, the monolith itself takes the order (201), else the hot path's acceptance does.
    merchant_switches_off()
    page.fill("#name", "Ann Angler")
    page.fill("#email", "ann@example.com")
    page.fill("#card", APPROVED_CARD)
    page.click("#buy-button")
    expect(page.locator("#order-state")).to_have_text("complete", timeout=60_000)
    expect(page.locator("#order-number")).to_have_text(re.compile(r"^[TL]\d+$"))
    expect(page.locator("#result")).not_to_have_class(re.compile("is-failed"))
    number = page.locator("#order-number").inner_text()

    if sale_still_open:
        assert HotOrder.objects.get().number == number
    else:
        from shop.models import PlacedOrder

        assert PlacedOrder.objects.get().number == number and not HotOrder.objects.exists()


def test_a_declined_card_can_be_corrected_and_the_order_placed(processes, process_env, allocation, worker_env, browser):
    from playwright.sync_api import expect

    base = _all_in_one(processes, process_env, worker_env)
    sale_route_add()

    page = browser.new_page()
    page.goto(base + PREFIX)
    page.select_option("#quantity", "2")
    expect(page.locator("#buy-button")).to_have_text("Buy now — $299.98")
    page.fill("#name", "Ann Angler")
    page.fill("#email", "ann@example.com")
    page.fill("#card", DECLINED_CARD)
    page.click("#buy-button")
    expect(page.locator("#order-state")).to_have_text("failed", timeout=60_000)
    expect(page.locator("#order-detail")).to_contain_text("declined")
    expect(page.locator("#buy-button")).to_be_enabled()

    page.fill("#card", APPROVED_CARD)
    page.click("#buy-button")
    expect(page.locator("#order-state")).to_have_text("complete", timeout=60_000)

    declined, placed = HotOrder.objects.order_by("pk")
    assert (declined.status, declined.stage) == ("failed", "card_declined")
    assert (placed.status, placed.quantity) == ("complete", 2)
    assert declined.idempotency_key != placed.idempotency_key


def test_a_page_opened_before_the_sale_starts_lets_the_buyer_order_once_it_has_started(
    processes, process_env, allocation, worker_env, browser
):
    """The page refreshes its stock figures: before the start a line says when to come back
    where the form goes, and the first figures that say the sale is open bring the form, its
    button enabled, without a reload."""
    from datetime import timedelta

    from django.utils import timezone
    from playwright.sync_api import expect

    # An hour ahead while the server starts and the page loads (8 s ahead was not far enough on
    # a machine busy with other tests); then the start is brought to now, as if the hour had passed.
    allocation.starts_at = timezone.now() + timedelta(hours=1)
    allocation.save(update_fields=["starts_at", "updated_at"])
    hotpath = processes.granian("config.wsgi_hotpath", process_env)

    page = page_looking_on_demand(browser)
    page.goto(hotpath + PREFIX)
    expect(page.locator("#buy")).to_be_hidden()
    expect(page.locator("#sale-closed")).to_contain_text("Come back on")
    expect(page.locator("#buy-button")).to_be_disabled()
    allocation.starts_at = timezone.now()
    allocation.save(update_fields=["starts_at", "updated_at"])
    # The page looks every 5 s: brought forward.
    looks_until(page, lambda ms: expect(page.locator("#buy-button")).to_be_enabled(timeout=ms))
    expect(page.locator("#buy-button")).to_contain_text("Buy now")
    expect(page.locator("#buy")).to_be_visible()
    expect(page.locator("#sale-closed")).to_be_hidden()


def page_with_two_left(processes, process_env, allocation, browser):
    """The sale's page in Chromium, at a phone's width, with 2 of its 20 units left."""
    from playwright.sync_api import expect

    allocation.sold = 18
    allocation.save(update_fields=["sold", "updated_at"])
    hotpath = processes.granian("config.wsgi_hotpath", process_env)
    page = page_looking_on_demand(browser, viewport={"width": 390, "height": 844})
    page.goto(hotpath + PREFIX)
    expect(page.locator("#stock-text")).to_have_text("Hurry — only 2 left")
    return page


def test_the_buyer_of_the_last_units_sees_the_sale_sold_out_beside_their_order(
    processes, process_env, allocation, browser
):
    """The page does not wait for the figures to count the order: "Sold out" at once, and the
    form stays, saying what was ordered, while the order is on its way."""
    from playwright.sync_api import expect

    page = page_with_two_left(processes, process_env, allocation, browser)
    sale_page_buy(page, 2)
    expect(page.locator("#order-number")).to_have_text(re.compile(r"^T\d+$"))
    expect(page.locator("#stock-text")).to_have_text("Sold out")
    expect(page.locator("#sale-banner-text")).to_have_text("⚡ Flash sale — sold out")
    expect(page.locator("#buy-button")).to_have_text("Ordered")
    expect(page.locator("#sale-closed")).to_be_hidden()
    next_look_shows(page, "Sold out")  # the page's next look at the figures
    expect(page.locator("#buy")).to_be_visible()


def test_a_buyer_asking_for_more_than_is_left_is_told_how_many_they_may_still_order(
    processes, process_env, allocation, browser
):
    """The page showed 2 left; another buyer took one meanwhile: this buyer, asking for 2, hears
    that 1 is left and may order it, rather than "it just sold out"."""
    from playwright.sync_api import expect

    page = page_with_two_left(processes, process_env, allocation, browser)
    # Another buyer, meanwhile.
    SaleAllocation.objects.filter(pk=allocation.pk).update(sold=19)
    sale_page_buy(page, 2)
    expect(page.get_by_text("Only 1 left: order 1 or fewer.")).to_be_visible()
    expect(page.locator("#buy-button")).to_be_enabled()
    sale_page_buy(page, 1)
    expect(page.locator("#order-number")).to_have_text(re.compile(r"^T\d+$"))


def test_a_sold_out_page_shows_what_to_do_instead_of_the_form(processes, process_env, allocation, browser):
    from playwright.sync_api import expect

    allocation.sold = 20
    allocation.save(update_fields=["sold", "updated_at"])
    hotpath = processes.granian("config.wsgi_hotpath", process_env)

    page = page_looking_on_demand(browser, viewport={"width": 390, "height": 844})
    page.goto(hotpath + PREFIX)
    expect(page.locator("#sale-closed")).to_contain_text("Every unit of this sale is taken.")
    for field in ("#quantity", "#name", "#email", "#card", "#buy-button"):
        expect(page.locator(field)).to_be_hidden()
    next_look_shows(page, "Sold out")  # the page's look at the figures keeps it so
    expect(page.locator("#buy")).to_be_hidden()
    expect(page.locator("#sale-closed")).to_be_visible()


def test_a_sale_selling_out_under_a_buyer_filling_the_form_gives_the_focus_to_what_to_do(
    processes, process_env, allocation, browser
):
    """The form gives way to the note when the figures say sold out: the focus, in the form, is
    not dropped to the top of the page but taken by the note, which a screen reader reads."""
    from playwright.sync_api import expect

    page = page_with_two_left(processes, process_env, allocation, browser)
    page.fill("#name", "Ann Angler")
    page.focus("#email")
    # Other buyers take the last units, and the figures say so at once, as after their orders
    # (a bulk update would leave the units left cached for up to 5 s).
    allocation.sold = 20
    allocation.save(update_fields=["sold", "updated_at"])
    # The page looks every 5 s: brought forward.
    looks_until(page, lambda ms: expect(page.locator("#sale-closed")).to_be_visible(timeout=ms))
    expect(page.locator("#buy")).to_be_hidden()
    expect(page.locator("#sale-closed")).to_be_focused()


def test_a_page_open_when_the_merchant_closes_the_sale_says_it_ended_while_the_edge_still_sends_it_there(
    processes, process_env, allocation, browser
):
    """The edge's route to the hot path outlives the sale until it is exported again (nginx,
    CloudFront): the hot path then answers the page's stock figures `not_hot`. The page says the
    sale has ended, instead of "only 20 left" and a button whose order would be refused."""
    from playwright.sync_api import expect

    hotpath = processes.granian("config.wsgi_hotpath", process_env)

    def merchant_closes() -> None:
        SaleAllocation.objects.filter(pk=allocation.pk).update(is_hot=False, state="closing")

    page = page_looking_on_demand(browser)
    page.goto(hotpath + PREFIX)
    expect(page.locator("#stock-text")).to_have_text("Hurry — only 20 left")
    merchant_closes()
    # The page looks every 5 s: brought forward.
    looks_until(
        page, lambda ms: expect(page.locator("#sale-banner-text")).to_have_text("This flash sale has ended", timeout=ms)
    )
    expect(page.locator("#buy")).to_be_hidden()
    expect(page.locator("#sale-closed")).to_contain_text("This sale has ended")


def test_a_page_kept_open_across_a_reopening_at_another_price_shows_the_price_its_order_is_charged(
    processes, process_env, allocation, browser
):
    """A buyer leaves the sale's page open; the merchant closes the sale, changes the price (a
    closed sale keeps it no longer) and opens it again. The page's button and price follow the
    price a 202 charges now, not the one it was loaded with."""
    from playwright.sync_api import expect

    hotpath = processes.granian("config.wsgi_hotpath", process_env)

    def merchant_reopens_at_another_price() -> None:
        SaleAllocation.objects.filter(pk=allocation.pk).update(is_hot=False, state="closed")
        product = allocation.product
        product.price_cents = 19999
        product.save(update_fields=["price_cents", "updated_at"])
        SaleAllocation.objects.filter(pk=allocation.pk).update(is_hot=True, state="open")

    page = page_looking_on_demand(browser)
    page.goto(hotpath + PREFIX)
    expect(page.locator("#buy-button")).to_have_text("Buy now — $149.99")
    merchant_reopens_at_another_price()
    # The page looks every 5 s: brought forward.
    looks_until(page, lambda ms: expect(page.locator("#buy-button")).to_have_text("Buy now — $199.99", timeout=ms))
    expect(page.locator(".product-detail-price .price")).to_have_text("$199.99")
    page.fill("#name", "Ann Angler")
    page.fill("#email", "ann@example.com")
    page.fill("#card", APPROVED_CARD)
    page.click("#buy-button")
    expect(page.locator("#order-number")).to_have_text(re.compile(r"^T\d+$"))

    assert HotOrder.objects.get().unit_price_cents == 19999


def test_a_page_opened_before_the_sale_starts_says_the_start_the_merchant_moved_it_to(
    processes, process_env, allocation, browser
):
    """The merchant moves an open sale's start (the admin allows it while the sale is open):
    a page already open says when to come back at the new start, not the one it was loaded with."""
    from datetime import datetime, timedelta

    from django.utils import timezone
    from playwright.sync_api import expect

    first = (timezone.now() + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    moved = first + timedelta(days=1, hours=2, minutes=30)
    SaleAllocation.objects.filter(pk=allocation.pk).update(starts_at=first)
    hotpath = processes.granian("config.wsgi_hotpath", process_env)

    def when(moment: datetime) -> str:
        return f"{moment:%a} {moment.day} {moment:%b, %H:%M} UTC"

    def come_back(moment: datetime) -> str:
        return f"Come back on {when(moment)} to order: the sale opens then."

    def merchant_moves_the_start() -> None:
        allocation.refresh_from_db()
        allocation.starts_at = moved
        allocation.save(update_fields=["starts_at", "updated_at"])

    page = page_looking_on_demand(browser)
    page.goto(hotpath + PREFIX)
    expect(page.locator("#sale-closed-text")).to_have_text(come_back(first))
    merchant_moves_the_start()
    # The page looks every 5 s: brought forward.
    looks_until(page, lambda ms: expect(page.locator("#sale-closed-text")).to_have_text(come_back(moved), timeout=ms))
    expect(page.locator("#stock-text")).to_have_text(f"Sale starts {when(moved)}")
