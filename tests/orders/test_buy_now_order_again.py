"""After a lost answer and a changed form, the page says the tab's first order stands and to
reload the page to order again (422, the key used for another order). The buyer who does so and
orders the same thing again, deliberately, gets a second order: not the first one shown again as
if it were new."""

from __future__ import annotations

import re

import pytest

from orders.models import HotOrder
from tests.orders.conftest import APPROVED_CARD, PREFIX
from tests.orders.test_buy_now_lost_answer import _answer_lost_once

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def queries_beside_the_browser(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _order(page, *, quantity: str) -> None:
    page.select_option("#quantity", quantity)
    page.fill("#name", "Ann Angler")
    page.fill("#email", "ann@example.com")
    page.fill("#card", APPROVED_CARD)
    page.click("#buy-button")


def test_reloading_to_order_again_as_told_orders_again(processes, process_env, allocation, browser):
    from playwright.sync_api import expect

    hotpath = processes.granian("config.wsgi_hotpath", process_env)
    page = browser.new_page()
    _answer_lost_once(page)
    page.goto(hotpath + PREFIX)
    _order(page, quantity="1")
    expect(page.locator("#buy-button")).to_contain_text("try again")
    first = HotOrder.objects.get()

    page.select_option("#quantity", "2")
    page.click("#buy-button")
    expect(page.locator("#order-detail")).to_contain_text("Reload the page to order again")

    # Told so, the buyer reloads and orders one more of the same, for a friend.
    page.reload()
    _order(page, quantity="1")
    expect(page.locator("#order-number")).to_have_text(re.compile(r"^T\d+$"))
    expect(page.locator("#order-number")).not_to_have_text(first.number)
    assert HotOrder.objects.count() == 2
