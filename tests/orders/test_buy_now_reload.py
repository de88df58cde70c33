"""The buy-now page reloaded on a bad mobile network: the order reached the hot path and was
accepted, but its answer was lost on the way back to the phone, and the buyer pulls to refresh
and orders again. The tab keeps the order's key over the reload, so the same order comes back,
never a second charge; a reload once the order was accepted shows that order again."""

from __future__ import annotations

import re

import pytest

from orders.models import HotOrder
from tests.orders.conftest import PREFIX
from tests.orders.sale_page import sale_page_answer_lost, sale_page_buy

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_an_order_whose_answer_was_lost_is_the_same_order_after_a_reload(processes, process_env, allocation, browser):
    from playwright.sync_api import expect

    hotpath, page, accepted = sale_page_answer_lost(processes, process_env, browser)

    page.reload()
    sale_page_buy(page)
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
    sale_page_buy(other, 2)
    expect(other.locator("#order-number")).to_have_text(re.compile(r"^T\d+$"))
    expect(other.locator("#order-number")).not_to_have_text(accepted.number)
    assert HotOrder.objects.count() == 2


def test_an_order_whose_answer_was_lost_is_not_ordered_again_after_a_reload_with_other_details(
    processes, process_env, allocation, browser
):
    """The buyer lost the answer, reloaded, and fixed a detail before sending again (a typo in
    the name, one more rod): the page still holds the first order's key and sends it, so the
    first order stands and the buyer is told so, instead of a second order and a second charge."""
    from playwright.sync_api import expect

    hotpath, page, accepted = sale_page_answer_lost(processes, process_env, browser)

    page.reload()
    sale_page_buy(page, 2)
    expect(page.locator("#order-detail")).to_contain_text("We already have an order from this page")
    assert list(HotOrder.objects.values_list("number", "quantity")) == [(accepted.number, 1)]

    # Reloaded once more, as the page says to order again: that is a new order of its own.
    page.reload()
    sale_page_buy(page, 2)
    expect(page.locator("#order-number")).to_have_text(re.compile(r"^T\d+$"))
    expect(page.locator("#order-number")).not_to_have_text(accepted.number)
    assert HotOrder.objects.count() == 2
