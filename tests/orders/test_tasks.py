"""The worker as it runs: real Celery worker processes placing accepted orders with the real
legacy API (its own gunicorn), through a worker killed mid-task, a backend that is down
for a while, and one that stays down until a merchant redrives the dead letter."""

from __future__ import annotations

import signal

import pytest

from orders import dead_letters
from orders.models import DeadLetter, HotOrder
from tests.conftest import eventually
from tests.orders.conftest import legacy_orders_count, legacy_references, order_accept_as_buyer, orders_final

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def accept(count: int) -> list[HotOrder]:
    return [order_accept_as_buyer() for _ in range(count)]


def worker_env_for_a_kill(worker_env: dict[str, str]) -> dict[str, str]:
    """A short visibility timeout, so that a new worker takes back a killed one's messages
    soon; a short legacy timeout and permit wait, so that the permits and the order claims the
    killed worker held end soon: a permit lasts the call's timeout and 7 s (10 s), a claim the
    permit wait as well (11 s). The timeout is still many times a call here (under a second)."""
    return {
        **worker_env,
        "ORDERS_VISIBILITY_TIMEOUT": "5",
        "ORDERS_UNACKED_RESTORE_SECONDS": "1",
        "LEGACY_API_TIMEOUT": "3",
        "ORDERS_SLOT_WAIT_SECONDS": "1",
    }


@pytest.mark.postgres
@pytest.mark.redis
def test_worker_killed_mid_task_every_order_completes_exactly_once(
    processes, product, allocation, legacy_api, legacy_env, worker_env
):
    # About a second per order at the legacy API, so the kill lands while orders are there.
    legacy_api.env = {**legacy_env, "LEGACY_ARGON2_TIME_COST": "6", "LEGACY_ARGON2_MEMORY_KIB": "65536"}
    legacy_api.start().stats_reset()
    stock_before = product.stock
    orders = accept(6)
    env = worker_env_for_a_kill(worker_env)
    first = processes.celery_worker(env, concurrency=2, name="worker-1")
    eventually(
        lambda: legacy_api.stats()["inflight"] >= 1 and HotOrder.objects.filter(stage="validating").exists(),
        timeout=60,
        interval=0.05,
        message="the worker never reached the legacy API",
    )

    processes.stop(first, sig=signal.SIGKILL)  # the whole group at once, as a crash would
    assert HotOrder.objects.filter(status="processing").exists(), "the kill came after every order was done"

    processes.celery_worker(env, concurrency=2, name="worker-2")
    eventually(orders_final(6), timeout=150, message="the orders of the killed worker were not completed")

    assert set(HotOrder.objects.values_list("status", flat=True)) == {"complete"}
    assert legacy_orders_count() == 6
    assert sorted(legacy_references()) == sorted(order.reference for order in HotOrder.objects.all())
    product.refresh_from_db()
    allocation.refresh_from_db()
    assert product.stock == stock_before - 6
    assert (allocation.reserved, allocation.sold) == (0, 6)
    assert len(orders) == 6


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_and_the_legacy_api_killed_mid_call_the_order_waits_out_the_reference_not_its_retries(
    processes, product, allocation, legacy_api, legacy_env, worker_env
):
    """The legacy API dies with the request it was placing: its pending row keeps the order's
    reference claimed there until the row's lease ends, and every request for it meanwhile is
    answered 409 in_progress. The retries (here 2, lasting 1.5-3 s) would all be spent on
    those answers; the order waits for the lease instead, and is placed once. The lease (20 s)
    outlasts the killed worker's claim on the order (11 s), which the second worker waits out
    before it asks, by more than those retries last."""
    from django.apps import apps

    legacy_orders = apps.get_model("legacy_api", "Order").objects
    lease = {"LEGACY_ORDER_LEASE_SECONDS": "20"}
    legacy_api.env = {**legacy_env, **lease, "LEGACY_ARGON2_TIME_COST": "6", "LEGACY_ARGON2_MEMORY_KIB": "65536"}
    legacy_api.start()
    [order] = accept(1)
    env = {**worker_env_for_a_kill(worker_env), "ORDERS_MAX_RETRIES": "2"}
    first = processes.celery_worker(env, concurrency=1, name="worker-1")
    eventually(
        lambda: legacy_orders.filter(status="pending").exists(),
        timeout=60,
        interval=0.02,
        message="the order never reached the legacy API",
    )
    processes.stop(first, sig=signal.SIGKILL)
    processes.stop(legacy_api.process, sig=signal.SIGKILL)
    assert legacy_orders.filter(status="pending").exists(), "the legacy API finished the order before the kill"

    legacy_api.env = {**legacy_env, **lease}
    legacy_api.start()
    second = processes.celery_worker(env, concurrency=1, name="worker-2")
    eventually(orders_final(1), timeout=120, message="the order was not placed")

    order.refresh_from_db()
    assert (order.status, order.stage) == ("complete", "sent_to_fulfilment")
    assert not DeadLetter.objects.exists()
    assert legacy_orders.filter(status="placed").count() == 1
    assert legacy_references() == [order.reference]
    log = processes.log(second)
    # It met the reference still claimed, and waited without spending a retry on it.
    assert "still placing" in log
    assert "will be retried: legacy API is still placing" not in log


def test_orders_wait_while_the_legacy_api_is_down_and_complete_when_it_returns(
    processes, product, allocation, legacy_api, worker_env
):
    orders = accept(3)
    processes.celery_worker({**worker_env, "ORDERS_MAX_RETRIES": "40"}, concurrency=2)
    eventually(
        lambda: HotOrder.objects.filter(attempts__gte=2).count() == 3,
        timeout=60,
        message="the worker did not retry while the legacy API was down",
    )
    assert set(HotOrder.objects.values_list("status", flat=True)) == {"processing"}
    assert "unreachable" in HotOrder.objects.first().last_error
    assert not DeadLetter.objects.exists()

    legacy_api.start()
    eventually(orders_final(3), timeout=60, message="the orders did not complete once the legacy API was back")
    assert set(HotOrder.objects.values_list("status", flat=True)) == {"complete"}
    assert sorted(legacy_references()) == sorted(order.reference for order in HotOrder.objects.all())
    assert len(orders) == 3


def test_permanently_failing_order_is_dead_lettered_then_redriven_to_complete(
    processes, product, allocation, legacy_api, worker_env
):
    [order] = accept(1)
    worker = processes.celery_worker({**worker_env, "ORDERS_MAX_RETRIES": "2"}, concurrency=1)
    eventually(
        lambda: HotOrder.objects.get(pk=order.pk).stage == "dead_lettered",
        timeout=60,
        message="the order was not dead-lettered",
    )
    letter = DeadLetter.objects.get(order=order)
    assert "unreachable" in letter.error and "after 3 attempts" in letter.error
    order.refresh_from_db()
    assert order.status == "processing" and order.reservation == "held"
    eventually(lambda: f"Subject: Hot order {order.number} is dead-lettered" in processes.log(worker), timeout=10)

    legacy_api.start()
    assert dead_letters.order_redrive(order_id=order.pk) is True
    eventually(orders_final(1), timeout=60, message="the redriven order did not complete")
    order.refresh_from_db()
    assert (order.status, order.stage) == ("complete", "sent_to_fulfilment")
    assert legacy_orders_count() == 1
    allocation.refresh_from_db()
    assert (allocation.reserved, allocation.sold) == (0, 1)


def test_declined_card_fails_the_order_and_releases_the_items(processes, allocation, legacy_api, worker_env):
    order = order_accept_as_buyer(quantity=2, card="4000000000000002")
    legacy_api.start()
    processes.celery_worker(worker_env, concurrency=1)
    eventually(orders_final(1), timeout=60)
    order.refresh_from_db()
    allocation.refresh_from_db()
    assert (order.status, order.stage, order.card_sealed) == ("failed", "card_declined", "")
    assert (allocation.reserved, allocation.sold) == (0, 0)
    assert legacy_orders_count() == 0
