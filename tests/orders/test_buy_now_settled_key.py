"""The tab's last order is kept over a reload only until it is settled. One the shop itself placed
for good (201, the sale closed meanwhile) is settled: the same buyer ordering the same thing again
from this tab, once the sale has reopened, is a second purchase, not a replay of the first."""

from __future__ import annotations

import re

import pytest

from orders.models import HotOrder
from shop.models import PlacedOrder
from tests.orders.conftest import PREFIX
from tests.orders.sale_page import sale_page_buy
from tests.orders.test_buy_now_browser import _all_in_one, sale_route_add

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_an_order_the_shop_placed_is_settled_and_the_next_one_from_the_tab_is_new(
    processes, process_env, allocation, worker_env, browser
):
    from django.core.management import call_command
    from playwright.sync_api import expect

    sale_route_add()
    base = _all_in_one(processes, process_env, worker_env)
    page = browser.new_page()
    page.goto(base + PREFIX)
    expect(page.locator(".sale-banner")).to_contain_text("Flash sale")

    # The sale closes while the page is open: the shop itself places the order, for good.
    call_command("edge_route", "disable", "muskie-sale")
    allocation.is_hot = False
    allocation.save()
    sale_page_buy(page)
    expect(page.locator("#order-state")).to_have_text("complete", timeout=60_000)
    first = page.locator("#order-number").inner_text()
    assert PlacedOrder.objects.get().number == first

    # The sale opens again; the buyer, in the same tab, buys one more for a friend.
    allocation.is_hot = True
    allocation.save()
    call_command("edge_route", "enable", "muskie-sale")
    page.reload()
    expect(page.locator(".sale-banner")).to_contain_text("Flash sale")
    sale_page_buy(page)
    expect(page.locator("#order-number")).to_have_text(re.compile(r"^T\d+$"), timeout=30_000)
    expect(page.locator("#order-number")).not_to_have_text(first)
    assert HotOrder.objects.count() == 1
