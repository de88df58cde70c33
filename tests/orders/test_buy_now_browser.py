"""The buy-now page in a real browser: a buyer fills the form, gets an order number at once and
watches it complete, with the hot path, a worker and the legacy API all running for real."""

from __future__ import annotations

import re

import pytest

from orders.models import HotOrder
from tests.conftest import chromium_path
from tests.orders.conftest import APPROVED_CARD, PREFIX

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_buyer_orders_from_the_buy_now_page_and_sees_it_complete(
    processes, process_env, allocation, legacy_api, worker_env
):
    from playwright.sync_api import expect, sync_playwright

    legacy_api.start()
    processes.celery_worker(worker_env, concurrency=1)
    hotpath = processes.gunicorn("config.wsgi_hotpath", process_env)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            page = browser.new_page()
            page.goto(hotpath + PREFIX)
            expect(page.locator("#stock-text")).to_contain_text("20")
            page.fill("#name", "Ann Angler")
            page.fill("#email", "not-an-email")
            page.fill("#card", APPROVED_CARD)
            page.click("#buy-button")
            expect(page.locator('[data-for="customer.email"]')).to_contain_text("valid email")
            expect(page.locator("#result")).to_be_hidden()

            page.fill("#email", "ann@example.com")
            page.select_option("#quantity", "2")
            page.click("#buy-button")
            expect(page.locator("#order-number")).to_have_text(re.compile(r"^T\d+$"))
            expect(page.locator("#order-state")).to_have_text("complete", timeout=60_000)
            expect(page.locator("#order-detail")).to_contain_text("confirmed")
        finally:
            browser.close()

    order = HotOrder.objects.get()  # one order: the refused attempt wrote nothing
    assert (order.quantity, order.customer_email, order.status) == (2, "ann@example.com", "complete")
