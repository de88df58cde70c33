"""The buy-now page on a bad mobile network, when no answer it can read comes back: a gateway's
504 after the hot path accepted the order behind it, or the connection dropped. The order may
well be placed, so the page does not call it failed; tapping again gives back that same order."""

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


@pytest.mark.parametrize("lost", ["gateway-timeout", "connection-dropped"])
def test_an_order_with_no_answer_is_not_told_as_failed_and_a_retry_gives_that_order(
    processes, process_env, allocation, browser, lost
):
    from playwright.sync_api import expect

    hotpath = processes.granian("config.wsgi_hotpath", process_env)
    page = browser.new_page()
    answered = []

    def no_answer_the_first_time(route):
        if route.request.method == "POST" and not answered:
            answered.append(route.fetch())  # the hot path accepts the order
            if lost == "gateway-timeout":
                route.fulfill(status=504, content_type="text/html", body="<h1>504 Gateway Time-out</h1>")
            else:
                route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/orders", no_answer_the_first_time)
    page.goto(hotpath + PREFIX)
    page.fill("#name", "Ann Angler")
    page.fill("#email", "ann@example.com")
    page.fill("#card", APPROVED_CARD)
    page.click("#buy-button")
    expect(page.locator("#order-detail")).to_contain_text("same order, never a second one")
    expect(page.locator("#result")).not_to_have_class(re.compile("is-failed"))
    order = HotOrder.objects.get()

    page.click("#buy-button")
    expect(page.locator("#order-number")).to_have_text(order.number)
    assert HotOrder.objects.count() == 1
