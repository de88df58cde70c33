"""The buy-now page on a bad mobile network, when no answer it can read comes back: a gateway's
504 after the hot path accepted the order behind it, or the connection dropped. The order may
well be placed, so the page does not call it failed; tapping again gives back that same order."""

from __future__ import annotations

import re

import pytest

from orders.models import HotOrder
from tests.orders.sale_page import sale_page_answer_lost

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.mark.parametrize("lost", ["gateway-timeout", "connection-dropped"])
def test_an_order_with_no_answer_is_not_told_as_failed_and_a_retry_gives_that_order(
    processes, process_env, allocation, browser, lost
):
    from playwright.sync_api import expect

    _, page, order = sale_page_answer_lost(processes, process_env, browser, gateway_timeout=lost == "gateway-timeout")
    expect(page.locator("#order-detail")).to_contain_text("same order, never a second one")
    expect(page.locator("#result")).not_to_have_class(re.compile("is-failed"))

    page.click("#buy-button")
    expect(page.locator("#order-number")).to_have_text(order.number)
    assert HotOrder.objects.count() == 1
