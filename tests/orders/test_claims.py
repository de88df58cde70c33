"""One legacy request at a time per order, whatever delivers its message twice: two deliveries
at the same moment, a retry after a read timeout while the first request is still being
worked on, a worker child SIGKILLed mid-call and its message redelivered at once. Real Celery
workers, the real legacy API (gunicorn), PostgreSQL and Redis."""

from __future__ import annotations

import os
import signal

import pytest
from django.conf import settings

from orders.models import HotOrder
from orders.tasks import order_process
from tests.conftest import eventually
from tests.orders.conftest import http_json, legacy_orders_count, order_accept_as_buyer, orders_final

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def legacy_placed() -> bool:
    """Whether the legacy API has placed an order (a pending row is one still being worked on)."""
    from django.apps import apps

    return apps.get_model("legacy_api", "Order").objects.filter(status="placed").exists()


def legacy_stats(legacy_api, *, reset: bool = False) -> dict:
    """The legacy API's figures, read (or reset) as the merchant reads them."""
    token = getattr(settings, "LEGACY_API_TOKENS", {}).get("merchant")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    path, method, body = ("stats/reset", "POST", {}) if reset else ("stats", "GET", None)
    status, figures, _headers = http_json(method, f"{legacy_api.url}/{path}", body, headers)
    assert status == 200, (status, figures)
    return figures


def slow_legacy(legacy_api, legacy_env, *, time_cost: int) -> None:
    """Starts the legacy API with an argon2 cost that keeps each order there for a while
    (t=6: about a second here), so that a second request would overlap the first."""
    legacy_api.env = {**legacy_env, "LEGACY_ARGON2_TIME_COST": str(time_cost), "LEGACY_ARGON2_MEMORY_KIB": "65536"}
    legacy_api.start()
    legacy_stats(legacy_api, reset=True)


def assert_sent_one_at_a_time(legacy_api, order: HotOrder, log: str) -> None:
    # No request found the legacy API still working on an earlier one for the same reference.
    assert "still placing" not in log
    order.refresh_from_db()
    assert (order.status, order.stage) == ("complete", "sent_to_fulfilment")
    assert legacy_orders_count() == 1
    stats = legacy_stats(legacy_api)
    # Never two requests for the order at the legacy API at once: the one order is all there was.
    assert stats["callers"]["hotpath"]["peak_inflight"] == 1, stats
    if "authorisations" in stats:
        assert stats["authorisations"] == 1, stats


def test_two_deliveries_of_one_message_at_the_same_moment_send_the_order_once(
    processes, allocation, legacy_api, legacy_env, worker_env
):
    order = order_accept_as_buyer()
    order_process.apply_async(args=[order.pk])  # the same message, delivered twice
    slow_legacy(legacy_api, legacy_env, time_cost=12)

    worker = processes.celery_worker(worker_env, concurrency=2)

    eventually(orders_final(1), timeout=90, message="the order was not placed")
    assert_sent_one_at_a_time(legacy_api, order, processes.log(worker))
    eventually(lambda: "'deferred'" in processes.log(worker), timeout=30, message="no second delivery was seen")


def test_a_retry_after_a_read_timeout_waits_while_the_first_request_is_worked_on(
    processes, allocation, legacy_api, legacy_env, worker_env
):
    order = order_accept_as_buyer()
    slow_legacy(legacy_api, legacy_env, time_cost=48)  # well over the read timeout and the retry's backoff
    env = {**worker_env, "LEGACY_API_TIMEOUT": "1", "ORDERS_SLOT_WAIT_SECONDS": "2"}

    worker = processes.celery_worker(env, concurrency=2)

    eventually(orders_final(1), timeout=90, message="the order was not placed")
    log = processes.log(worker)
    assert_sent_one_at_a_time(legacy_api, order, log)
    assert "ReadTimeoutError" in log and "'deferred'" in log, log[-3000:]
    assert order.attempts == 2  # the timed-out one and the one placed; waiting was no attempt


def test_a_worker_child_killed_mid_call_is_redelivered_at_once_and_waits_for_its_claim(
    processes, allocation, legacy_api, legacy_env, worker_env
):
    order = order_accept_as_buyer()
    slow_legacy(legacy_api, legacy_env, time_cost=60)  # several seconds: the kill lands mid-call
    # The order's claim lasts the permit wait, the call's timeout and 7 s: 14 s, well past the
    # 5 s or so the legacy API takes to finish the killed child's request, which the retry then
    # finds placed. The kill comes as soon as the request is at the legacy API, long before the
    # call's timeout.
    env = {**worker_env, "LEGACY_API_TIMEOUT": "6", "ORDERS_SLOT_WAIT_SECONDS": "1"}
    worker = processes.celery_worker(env, concurrency=2)
    eventually(
        lambda: legacy_stats(legacy_api)["inflight"] >= 1 and HotOrder.objects.get(pk=order.pk).claimed_by,
        timeout=60,
        interval=0.05,
        message="the worker never reached the legacy API",
    )

    # The claim names the process holding it: kill that child, not the whole worker.
    child = int(HotOrder.objects.get(pk=order.pk).claimed_by.split(":")[0])
    assert child != worker.pid
    os.kill(child, signal.SIGKILL)
    assert not legacy_placed(), "the kill came after the legacy API had placed the order"

    eventually(orders_final(1), timeout=90, message="the killed child's order was not placed")
    log = processes.log(worker)
    assert_sent_one_at_a_time(legacy_api, order, log)
    assert "WorkerLostError" in log and "'deferred'" in log, log[-3000:]
