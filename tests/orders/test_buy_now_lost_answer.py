"""The buy-now page on a bad mobile network: the order reached the hot path and was accepted,
but its answer was lost on the way back to the phone. Whatever the buyer taps next, the one
order stands, and the page says so rather than inviting a tap that orders again."""

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


def test_an_order_whose_answer_was_lost_is_not_ordered_again_with_other_details(
    processes, process_env, allocation, browser
):
    from playwright.sync_api import expect

    _, page, _ = sale_page_answer_lost(processes, process_env, browser)

    # Unsure it went through, the buyer asks for two this time and taps again: the page says
    # the first order stands, not "failed", and offers no tap that would order a second time.
    page.select_option("#quantity", "2")
    page.click("#buy-button")
    expect(page.locator("#order-detail")).to_contain_text("already have an order")
    expect(page.locator("#order-detail")).not_to_contain_text("key")
    expect(page.locator("#result")).not_to_have_class(re.compile("is-failed"))
    expect(page.locator("#buy-button")).to_be_disabled()
    expect(page.locator("#buy-button")).to_have_text("Ordered")

    order = HotOrder.objects.get()
    assert order.quantity == 1
