"""The hot path under real concurrency: many buyers at once over HTTP to a real server (granian) of
the hot-path deployment, drained by a real worker into the real legacy API."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import uuid
from urllib.parse import urlsplit

import pytest

from orders.models import HotOrder
from procs import url_status
from tests.conftest import eventually
from tests.orders.conftest import (
    ORDERS_URL,
    broker_purge,
    legacy_orders_count,
    legacy_references,
    order_body,
    orders_final,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def post_order(base_url: str, key: str, body: dict, *, timeout: float = 60, before=None):
    """One buyer's POST on a connection of its own: (status, JSON body, headers). `before` runs
    once the connection is made, just before the request is sent."""
    connection = http.client.HTTPConnection(urlsplit(base_url).netloc, timeout=timeout)
    try:
        if before is not None:
            before()
        connection.request(
            "POST",
            ORDERS_URL,
            body=json.dumps(body),
            headers={"Content-Type": "application/json", "Idempotency-Key": key},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}"), response.headers
    finally:
        connection.close()


def post_all_at_once(base_url: str, requests: list[tuple[str, dict]]) -> list[tuple[int, dict]]:
    """Sends every (key, body) from its own thread and connection, released together."""
    barrier = threading.Barrier(len(requests))
    answers: list[tuple[int, dict] | None] = [None] * len(requests)

    def buy(index: int, key: str, body: dict) -> None:
        status, answer, _ = post_order(base_url, key, body, before=barrier.wait)
        answers[index] = (status, answer)

    threads = [threading.Thread(target=buy, args=(i, key, body)) for i, (key, body) in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(answer is not None for answer in answers), "a buyer got no answer"
    return answers  # type: ignore[return-value]


def test_200_buyers_for_20_units_get_exactly_20_orders_placed_once_within_legacy_capacity(
    processes, process_env, product, allocation, legacy_api, legacy_env, worker_env
):
    allocation.allocated = 20
    allocation.per_order_limit = 1
    allocation.save()
    stock_before = product.stock
    # The legacy API works ~0.2 s per order, so six worker processes would overlap there if
    # the shared permits did not hold them to its capacity of two.
    legacy_api.env = {**legacy_env, "LEGACY_ARGON2_TIME_COST": "3", "LEGACY_ARGON2_MEMORY_KIB": "32768"}
    legacy_api.start().stats_reset()
    processes.celery_worker(worker_env, concurrency=6)
    hotpath = processes.granian("config.wsgi_hotpath", {**process_env, "ORDERS_THROTTLE_PER_IP": "0"}, threads=8)

    answers = post_all_at_once(hotpath, [(uuid.uuid4().hex, order_body()) for _ in range(200)])

    accepted = [body for status, body in answers if status == 202]
    sold_out = [body for status, body in answers if status == 409 and body.get("error") == "sold_out"]
    assert (len(accepted), len(sold_out)) == (20, 180)
    numbers = [body["number"] for body in accepted]
    assert len(set(numbers)) == 20
    assert sorted(HotOrder.objects.values_list("number", flat=True)) == sorted(numbers)

    eventually(orders_final(20), timeout=120, message="the worker did not drain the 20 orders")
    assert set(HotOrder.objects.values_list("status", flat=True)) == {"complete"}
    assert legacy_orders_count() == 20
    assert sorted(legacy_references()) == sorted(o.reference for o in HotOrder.objects.filter(number__in=numbers))
    product.refresh_from_db()
    allocation.refresh_from_db()
    assert product.stock == stock_before - 20
    assert (allocation.reserved, allocation.sold) == (0, 20)
    stats = legacy_api.stats()
    assert 1 <= stats["peak_inflight"] <= 2, stats
    assert stats["callers"]["hotpath"]["peak_inflight"] == stats["peak_inflight"], stats  # all from the workers
    assert stats["shed"] == 0, stats


def test_same_idempotency_key_20_times_at_once_makes_one_order(processes, process_env, allocation):
    broker_purge()
    hotpath = processes.granian("config.wsgi_hotpath", process_env, threads=8)
    body = order_body(quantity=2)

    answers = post_all_at_once(hotpath, [("one-key-for-all", body)] * 20)

    assert {status for status, _ in answers} == {202}
    assert len({answer["number"] for _, answer in answers}) == 1
    assert len({answer["status_url"] for _, answer in answers}) == 1
    assert HotOrder.objects.count() == 1
    allocation.refresh_from_db()
    assert allocation.reserved == 2

    other = post_all_at_once(hotpath, [("one-key-for-all", order_body(quantity=1))])
    assert other[0][0] == 422
    assert HotOrder.objects.count() == 1
    broker_purge()


def test_a_hot_path_worker_killed_mid_order_is_started_again_and_the_retry_gets_the_first_answer(
    processes, process_env, allocation
):
    """The server's worker dies (out of memory, a crash) after its order committed: the buyer's
    retry with the same key reaches the worker started in its place and gets that order."""
    broker_purge()
    hotpath = processes.granian("config.wsgi_hotpath", process_env, workers=1, threads=2, name="hotpath")
    main = processes.get("hotpath")
    (first,) = subprocess.run(["pgrep", "-P", str(main.pid)], capture_output=True, text=True).stdout.split()

    order = order_body()
    ((status, body),) = post_all_at_once(hotpath, [("killed-key", order)])
    assert status == 202
    os.kill(int(first), signal.SIGKILL)

    def started_again() -> bool:
        children = subprocess.run(["pgrep", "-P", str(main.pid)], capture_output=True, text=True).stdout.split()
        return bool(children) and first not in children and 0 < url_status(hotpath + "/") < 500

    eventually(started_again, timeout=30, message="the killed worker was not started again")
    ((again_status, again),) = post_all_at_once(hotpath, [("killed-key", order)])
    assert (again_status, again["number"]) == (202, body["number"])
    assert HotOrder.objects.count() == 1


def test_an_acceptance_stuck_behind_a_lock_held_elsewhere_gets_a_503_and_its_retry_is_accepted_once(
    processes, process_env, allocation
):
    """The sale's row locked by a transaction left open elsewhere (a merchant's session, a stuck
    client): the hot path's statement is cancelled at its timeout instead of holding the
    server's thread for as long as the lock is held, the buyer gets 503 with Retry-After and
    nothing is written, and once the lock is gone the same key is accepted, once."""
    import psycopg

    from tests.conftest import test_database_url

    broker_purge()
    env = {**process_env, "DATABASE_STATEMENT_TIMEOUT_MS": "1000"}
    hotpath = processes.granian("config.wsgi_hotpath", env, workers=1, threads=2, name="hotpath")
    order = order_body()
    with psycopg.connect(test_database_url().replace("postgres://", "postgresql://")) as holder:
        holder.execute("SELECT id FROM orders_saleallocation WHERE id = %s FOR UPDATE", [allocation.pk])
        # Without the timeout the answer would wait for the lock, past the client's patience.
        status, body, headers = post_order(hotpath, "locked-key", order, timeout=30)
        assert (status, body["error"]) == (503, "unavailable")
        assert headers.get("Retry-After")
        assert HotOrder.objects.count() == 0
        holder.rollback()
    status, body, _ = post_order(hotpath, "locked-key", order, timeout=30)
    assert status == 202
    again_status, again, headers = post_order(hotpath, "locked-key", order, timeout=30)
    assert (again_status, again["number"], headers.get("Idempotent-Replayed")) == (202, body["number"], "true")
    assert HotOrder.objects.count() == 1
    allocation.refresh_from_db()
    assert allocation.reserved == 1
