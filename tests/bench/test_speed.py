"""Two wrk figures whose ratio is a bar are measured in turn: each sweeps its concurrencies,
then their repetitions alternate at each one's best concurrency."""

import threading
import time

import pytest
from django.conf import settings
from django.db import connection

from bench.speed import WrkTarget, backlog_fill, backlog_queued, wrk_best_together
from orders.models import OutboxMessage
from orders.outbox import outbox_relay
from tests.orders.conftest import allocation, broker_purge, category, order_accept_as_buyer, product

__all__ = ["allocation", "category", "product"]  # fixtures of the orders tests, used here


def test_repetitions_alternate_and_each_figure_is_its_own_median():
    calls = []
    # The machine slows down over the measurement: a run made later is slower, whatever it measures.
    speed = {"a": {4: 100.0, 16: 300.0}, "b": {8: 200.0, 32: 150.0}}

    def run(target: WrkTarget, connections: int, seconds: int) -> dict:
        calls.append((target.url, connections))
        rps = speed[target.url][connections] * (1 - 0.05 * len(calls))
        return {"connections": connections, "rps": rps, "p99_ms": float(len(calls)), "non_2xx": 0}

    targets = {"soldout": WrkTarget("a", connections=(4, 16)), "ceiling": WrkTarget("b", connections=(8, 32))}
    figures = wrk_best_together(targets, seconds=1, times=3, run=run)

    # Both sweeps first, then three fresh runs at the best concurrency of each, in turn: the
    # sweep's best run (the highest of several) is not one of them.
    assert calls == [("a", 4), ("a", 16), ("b", 8), ("b", 32), *[("a", 16), ("b", 8)] * 3]
    soldout, ceiling = figures["soldout"], figures["ceiling"]
    assert soldout["connections"] == 16 and ceiling["connections"] == 8
    assert soldout["values"] == [225.0, 195.0, 165.0]
    assert soldout["median"] == 195.0 and (soldout["min"], soldout["max"]) == (165.0, 225.0)
    assert ceiling["values"] == [140.0, 120.0, 100.0]
    assert ceiling["median"] == 120.0
    assert [row["connections"] for row in soldout["sweep"]] == [4, 16]
    assert [row["rps"] for row in soldout["sweep"]] == [95.0, 270.0]
    assert soldout["p99_ms"] == 7.0  # the median of its three runs' p99s (5, 7, 9)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_backlog_is_measured_once_the_relay_has_queued_it(allocation):
    """100,000 orders written at once sit in the outbox until the relay queues them: the
    acceptances measured "with a backlog" must not run while it does."""
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("the queue's depth is read from Redis: set CELERY_BROKER_URL=redis://...")
    broker_purge()
    order_accept_as_buyer(quantity=1)  # the backlog's rows are copies of the latest order
    OutboxMessage.objects.all().delete()
    backlog_fill(product_id=allocation.product_id, orders=300, run="t")
    assert OutboxMessage.objects.count() == 300

    def relay_later():
        time.sleep(1.0)
        while outbox_relay(limit=100):
            pass
        connection.close()

    relay = threading.Thread(target=relay_later)
    relay.start()
    try:
        queued = backlog_queued(settings.CELERY_BROKER_URL, timeout=30)
    finally:
        relay.join()
    assert queued["outbox_left"] == 0 and queued["orders_queued"] == 300
    assert queued["relay_seconds"] >= 1.0
    broker_purge()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_relay_that_does_not_keep_up_is_reported_not_waited_for_forever(allocation):
    order_accept_as_buyer(quantity=1)
    backlog_fill(product_id=allocation.product_id, orders=10, run="u")
    queued = backlog_queued(settings.CELERY_BROKER_URL, timeout=0.5)
    assert queued["outbox_left"] == OutboxMessage.objects.count() >= 10
