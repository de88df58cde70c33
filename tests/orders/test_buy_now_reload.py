"""The buy-now page reloaded on a bad mobile network: the order reached the hot path and was
accepted, but its answer was lost on the way back to the phone, and the buyer pulls to refresh
and orders again. The tab keeps the order's key over the reload, so the same order comes back,
never a second charge; a reload once the order was accepted shows that order again."""

from __future__ import annotations

import re

import pytest

from orders.models import HotOrder
from tests.orders.conftest import APPROVED_CARD, PREFIX

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def queries_beside_the_browser(monkeypatch):
    """Playwright's loop runs in the test's thread, where Django refuses synchronous queries;
    the test's own queries run between the browser's steps, never during one."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _order(page, *, quantity: str = "1") -> None:
    page.select_option("#quantity", quantity)
    page.fill("#name", "Ann Angler")
    page.fill("#email", "ann@example.com")
    page.fill("#card", APPROVED_CARD)
    page.click("#buy-button")


def test_an_order_whose_answer_was_lost_is_the_same_order_after_a_reload(processes, process_env, allocation, browser):
    from playwright.sync_api import expect

    hotpath = processes.granian("config.wsgi_hotpath", process_env)
    page = browser.new_page()
    lost = []

    def lose_first_answer(route):
        if route.request.method == "POST" and not lost:
            lost.append(route.fetch())  # the server accepts the order; the phone never hears
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/orders", lose_first_answer)
    page.goto(hotpath + PREFIX)
    _order(page)
    expect(page.locator("#buy-button")).to_contain_text("try again")
    accepted = HotOrder.objects.get()

    page.reload()
    _order(page)
    expect(page.locator("#order-number")).to_have_text(accepted.number)
    assert HotOrder.objects.count() == 1

    # Pulled to refresh again while it is placed: the page shows the order, not a form to
    # order from as if nothing had been ordered.
    page.reload()
    expect(page.locator("#order-number")).to_have_text(accepted.number)
    expect(page.locator("#buy-button")).to_be_disabled()

    # Another tab is another page: what its buyer orders there is an order of its own.
    other = browser.new_page()
    other.goto(hotpath + PREFIX)
    _order(other, quantity="2")
    expect(other.locator("#order-number")).to_have_text(re.compile(r"^T\d+$"))
    expect(other.locator("#order-number")).not_to_have_text(accepted.number)
    assert HotOrder.objects.count() == 2
