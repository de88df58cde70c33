"""After a stampede on the hot path with ordinary checkouts beside it, and through the drills a
test can run here (a worker SIGKILLed while it works, the legacy API down for a while), the
read models agree with the records: the inventory view with the stock of record and the sale's
allocation, sales per minute with the orders placed, the tallies with the revenue; and
`events rebuild --check` exits 0. The consumers run in the worker's beat the whole time."""

from __future__ import annotations

import signal
import threading
import uuid

import pytest
from django.core.management import call_command
from django.db.models import Sum

import legacy_client
import procs
from events.selectors import consumer_state
from legacy_api.models import Order, OrderLine
from orders.models import DeadLetter, HotOrder, SaleAllocation
from orders.sales import sale_open
from readmodels.inventory import VIEW as INVENTORY
from readmodels.models import SalesMinute, Tally
from shop.models import Product
from tests.conftest import BIN, eventually
from tests.orders.conftest import APPROVED_CARD, DECLINED_CARD, LegacyApi, order_body, orders_final
from tests.orders.test_concurrency import post_all_at_once
from tests.readmodels.conftest import READ_MODELS

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def checkouts_beside(count: int) -> threading.Thread:
    """Ordinary shoppers checking out other products through the legacy API, as the storefront does."""

    def shop() -> None:
        for i in range(count):
            legacy_client.order_place(
                reference=uuid.uuid4().hex,
                name="Bob Bream",
                email=f"bob{i}@example.com",
                lines=[{"product": "spinning-reel" if i % 2 else "tourney-casting-rod", "quantity": 1 + i % 3}],
                card_number=APPROVED_CARD,
                caller="storefront",
            )

    thread = threading.Thread(target=shop)
    thread.start()
    return thread


def worker_with_beat(processes, env: dict, tmp_path, name: str) -> procs.Process:
    argv = procs.celery_worker_argv(
        BIN / "celery", hostname=f"{name}@%h", concurrency=2, beat_schedule=tmp_path / f"{name}-beat"
    )
    return processes.start(argv, env, name=name)


def test_after_a_stampede_and_its_drills_the_read_models_agree_with_the_records(
    catalogue, live_server, settings, processes, legacy_api: LegacyApi, worker_env, tmp_path
):
    settings.LEGACY_API_URL = legacy_api.url
    # The legacy API killed mid-request keeps that order's reference claimed until the
    # request's lease there ends: a short one, so that the order waits seconds, not 90 (and
    # no longer than the killed worker's claims make it wait anyway).
    legacy_api.env = {**legacy_api.env, "LEGACY_ORDER_LEASE_SECONDS": "10"}
    legacy_api.start()
    sale_open(product=catalogue["muskie-casting-rod"], units=12, per_order_limit=2)
    env = {
        **worker_env,
        "EVENT_CONSUMERS_SECONDS": "0.5",
        "ORDERS_VISIBILITY_TIMEOUT": "5",
        "ORDERS_UNACKED_RESTORE_SECONDS": "1",
        "LEGACY_API_TIMEOUT": "3",
        # The killed worker's order claims last the permit wait and the call: both short
        # (1 s, and the call's timeout and 7 s: 11 s in all).
        "ORDERS_SLOT_WAIT_SECONDS": "1",
        # The retries outlast the legacy API's outage and its restart, however slow this
        # machine is at the time (a 1-2 s backoff spends eight retries in about 12 s).
        "ORDERS_MAX_RETRIES": "40",
    }
    env.pop("EVENT_CONSUMERS", None)
    first = worker_with_beat(processes, env, tmp_path, "worker-1")

    beside = checkouts_beside(12)
    buyers = [(uuid.uuid4().hex, order_body(card=DECLINED_CARD if i % 5 == 0 else APPROVED_CARD)) for i in range(16)]
    answers = post_all_at_once(live_server.url, buyers)
    assert sorted(status for status, _ in answers).count(202) == 12

    # Drill: the worker is killed while it works, and another takes over.
    eventually(lambda: HotOrder.objects.filter(stage="validating").exists(), timeout=60, interval=0.05)
    processes.stop(first, sig=signal.SIGKILL)
    # Drill: the legacy API is down for a while, then back: until the new worker has found
    # it down (and will retry those orders).
    processes.stop(legacy_api.process, sig=signal.SIGKILL)
    second = worker_with_beat(processes, env, tmp_path, "worker-2")
    eventually(
        lambda: "legacy API unreachable" in second.log(),
        timeout=60,
        interval=0.1,
        message="the new worker did not meet the legacy API's outage",
    )
    legacy_api.start()
    beside.join(timeout=120)
    finished = orders_final(12)
    eventually(
        lambda: finished() or DeadLetter.objects.exists(),
        timeout=180,
        message="the sale's orders were not finished",
    )
    assert not DeadLetter.objects.values_list("order__number", "error").first()
    # The consumers in the worker's beat fold in every event, the test runs none of them.
    eventually(
        lambda: all(consumer_state(consumer=name).behind == 0 for name in READ_MODELS),
        timeout=60,
        message="the read models' consumers fell behind",
    )

    # The inventory view is the stock of record, and the sale's figures are the allocation's.
    for product in Product.objects.all():
        row = INVENTORY.live_rows().get(product=product.slug)
        assert (row.on_hand, row.held) == (product.stock, product.held), product.slug
    allocation = SaleAllocation.objects.get(product__slug="muskie-casting-rod")
    row = INVENTORY.live_rows().get(product="muskie-casting-rod")
    assert (row.allocated, row.reserved, row.sold, row.sale_state) == (
        allocation.allocated,
        allocation.reserved,
        allocation.sold,
        "open",
    )
    # Sales per minute add up to the orders placed; the tallies to the revenue.
    placed = Order.objects.filter(status=Order.Status.PLACED)
    revenue = sum(order.total_cents for order in placed)
    assert placed.filter(hold__isnull=False).exists() and placed.filter(hold__isnull=True).exists()
    minutes = SalesMinute.objects.aggregate(orders=Sum("orders"), units=Sum("units"), revenue=Sum("revenue_cents"))
    units = OrderLine.objects.filter(order__status=Order.Status.PLACED).aggregate(n=Sum("quantity"))["n"]
    assert minutes == {"orders": placed.count(), "units": units, "revenue": revenue}
    for kind in ("supplier", "category"):
        assert Tally.objects.filter(kind=kind).aggregate(r=Sum("revenue_cents"))["r"] == revenue
    call_command("events", "rebuild", "--check")
