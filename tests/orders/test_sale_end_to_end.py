"""Every 202 is kept: with the sale's units held in the stock of record, every buyer the hot
path accepted gets the order completed, while ordinary checkouts and direct legacy orders of
the same product fight over the rest at the same moment (real gunicorn, Celery worker and
legacy API processes on PostgreSQL)."""

from __future__ import annotations

import threading
import time
import uuid
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test import Client

import legacy_client
from orders.models import HotOrder, SaleAllocation, SaleState
from tests.conftest import eventually
from tests.orders.conftest import order_body, orders_final
from tests.orders.sale_support import legacy_lines_on_hold, stock
from tests.orders.test_concurrency import post_all_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BUYERS = 20
CHECKOUTS = 8  # of 5 units each, through the storefront's basket and checkout
DIRECT = 25  # of 2 units each, straight to the legacy API
ATTEMPTS = 50
CHECKOUT_FORM = {
    "name": "Walk In",
    "address_line": "1 Lake Road",
    "city": "Hayward",
    "region": "WI",
    "postcode": "54843",
    "country": "United States",
    "card_number": "4242424242424242",
}


def checkout(index: int, start: threading.Barrier, outcomes: list) -> None:
    """One shopper: basket, then checkout, again while the legacy API sheds load (503).
    Appends "placed", "out_of_stock" or what else happened."""
    client = Client()
    try:
        added = client.post(
            "/api/basket/items", {"product": "muskie-casting-rod", "quantity": 5}, content_type="application/json"
        )
        start.wait()
        if added.status_code != 200:
            outcomes.append("out_of_stock" if added.status_code == 409 else added.status_code)
            return
        for _ in range(ATTEMPTS):
            client.get("/checkout/")
            response = client.post("/checkout/", {**CHECKOUT_FORM, "email": f"walk.in{index}@example.com"})
            if 'data-checkout-error="unavailable"' not in response.content.decode():
                break
            time.sleep(0.2)
        if response.status_code == 302:
            outcomes.append("placed")
        elif 'data-checkout-error="out_of_stock"' in response.content.decode():
            outcomes.append("out_of_stock")
        else:
            outcomes.append(response.status_code)
    finally:
        connection.close()


def direct_order(index: int, start: threading.Barrier, outcomes: list) -> None:
    """One order straight to the legacy API, again while it sheds load (503)."""
    reference = f"direct-{index}-{uuid.uuid4().hex[:8]}"
    try:
        start.wait()
        for _ in range(ATTEMPTS):
            answer = legacy_client.order_place(
                reference=reference,
                name="Phone Order",
                email=f"phone{index}@example.com",
                lines=[{"product": "muskie-casting-rod", "quantity": 2}],
                card_number="4242424242424242",
            )
            if answer.retryable:
                time.sleep(0.2)
                continue
            outcomes.append(str(answer.outcome))
            return
        outcomes.append("unavailable")
    finally:
        connection.close()


def test_every_accepted_order_completes_while_other_channels_sell_the_rest(
    settings, processes, process_env, product, legacy_api, legacy_env, worker_env
):
    legacy_api.env = {**legacy_env, "LEGACY_CAPACITY": "4"}
    legacy_api.start()
    settings.LEGACY_API_URL = legacy_api.url
    settings.ROOT_URLCONF = "config.urls_monolith"
    out = StringIO()
    call_command("sale", "open", "muskie-casting-rod", "--units", str(BUYERS), "--per-order", "1", stdout=out)
    allocation = SaleAllocation.objects.get()
    assert (stock().held, stock().available) == (BUYERS, 100 - BUYERS)
    processes.celery_worker(worker_env, concurrency=3)
    hotpath = processes.granian("config.wsgi_hotpath", {**process_env, "ORDERS_THROTTLE_PER_IP": "0"}, threads=8)

    # The storefront's shoppers and the phone orders start with the buyers: together they ask
    # for 90 units of the 80 not held.
    start = threading.Barrier(CHECKOUTS + DIRECT + 1)
    checkouts: list = []
    directs: list = []
    others = [threading.Thread(target=checkout, args=(i, start, checkouts)) for i in range(CHECKOUTS)]
    others += [threading.Thread(target=direct_order, args=(i, start, directs)) for i in range(DIRECT)]
    for thread in others:
        thread.start()
    start.wait()
    answers = post_all_at_once(hotpath, [(uuid.uuid4().hex, order_body()) for _ in range(BUYERS)])
    for thread in others:
        thread.join()

    assert [status for status, _ in answers] == [202] * BUYERS
    eventually(orders_final(BUYERS), timeout=120, message="the worker did not finish the accepted orders")
    assert set(HotOrder.objects.values_list("status", "stage")) == {("complete", "sent_to_fulfilment")}
    # The other channels were refused what was held, not the sale refused what it had accepted.
    outcomes = directs + checkouts
    assert set(outcomes) == {"placed", "out_of_stock"} and len(outcomes) == DIRECT + CHECKOUTS
    assert "placed" in checkouts and "placed" in directs
    allocation.refresh_from_db()
    assert (allocation.reserved, allocation.sold, allocation.remaining) == (0, BUYERS, 0)

    call_command("sale", "close", "muskie-casting-rod", stdout=out)

    allocation.refresh_from_db()
    figures = stock()
    assert allocation.state == SaleState.CLOSED
    assert figures.held == 0 and figures.available == figures.on_hand
    # The books add up: what the sale counts as sold is what the legacy API drew on its hold,
    # and the stock of record lost exactly the units of every order it placed.
    assert legacy_lines_on_hold(allocation.hold_reference) == allocation.sold == BUYERS
    placed = sum(apps.get_model("legacy_api", "OrderLine").objects.values_list("quantity", flat=True))
    assert figures.on_hand == 100 - placed
    assert BUYERS < placed <= 100
