"""After a lost answer and a changed form, the page says the tab's first order stands and to
reload the page to order again (422, the key used for another order). The buyer who does so and
orders the same thing again, deliberately, gets a second order: not the first one shown again as
if it were new."""

from __future__ import annotations

import re

import pytest

from orders.models import HotOrder
from tests.orders.sale_page import sale_page_answer_lost, sale_page_buy

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_reloading_to_order_again_as_told_orders_again(processes, process_env, allocation, browser):
    from playwright.sync_api import expect

    hotpath, page, first = sale_page_answer_lost(processes, process_env, browser)

    page.select_option("#quantity", "2")
    page.click("#buy-button")
    expect(page.locator("#order-detail")).to_contain_text("Reload the page to order again")

    # Told so, the buyer reloads and orders one more of the same, for a friend.
    page.reload()
    sale_page_buy(page, 1)
    expect(page.locator("#order-number")).to_have_text(re.compile(r"^T\d+$"))
    expect(page.locator("#order-number")).not_to_have_text(first.number)
    assert HotOrder.objects.count() == 2
