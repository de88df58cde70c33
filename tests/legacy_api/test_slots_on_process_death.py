"""The legacy API's capacity slot of a gunicorn worker killed mid-order is freed as the worker
dies (the master's child_exit hook in config/gunicorn.py), not 90 s later when its lease ends:
the next order is taken instead of shed. Real gunicorn, PostgreSQL and Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import threading

import pytest
import redis
from django.conf import settings

from legacy_api import capacity
from tests.conftest import BIN, eventually, free_port, wait_for_port
from tests.legacy_api.conftest import bearer
from tests.orders.conftest import http_json

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_killed_workers_slot_is_freed_at_once_and_the_next_order_is_taken(
    processes, process_env, muskie_rod, order_body
):
    server, url = _legacy_start(processes, process_env)
    client = redis.Redis.from_url(settings.REDIS_URL)
    slot = capacity.RedisBackend(settings.REDIS_URL).slot_key(0)
    assert client.get(slot) is None

    first = threading.Thread(
        target=lambda: _post_quietly(url, order_body(reference="killed-1")), daemon=True, name="order killed"
    )
    first.start()
    eventually(lambda: client.get(slot) is not None, timeout=30, interval=0.05, message="the order took no slot")
    holder = int(client.get(slot).decode().split("@")[0])
    assert holder != server.pid
    os.kill(holder, signal.SIGKILL)

    eventually(lambda: client.get(slot) is None, timeout=30, message="the dead worker's slot is still taken")
    assert "freed 1 capacity slot(s)" in processes.log(server)
    status, body, _ = http_json("POST", url, order_body(reference="next-1"), bearer("storefront"))
    assert status == 201, body
    first.join(timeout=30)


def _legacy_start(processes, process_env: dict):
    """The legacy API under gunicorn with the deployment's hooks, one slot, and several seconds
    an order, so that a kill lands while an order holds the only slot; its process and orders URL."""
    port = free_port()
    env = {**process_env, "LEGACY_CAPACITY": "1", "LEGACY_ARGON2_TIME_COST": "40", "LEGACY_ARGON2_MEMORY_KIB": "65536"}
    server = processes.start(
        [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "config.wsgi_legacy:application"]
        + ["--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "--timeout", "60"],
        env,
        name="legacy",
    )
    wait_for_port(port, process=server)
    return server, f"http://127.0.0.1:{port}/legacy-api/orders"


def _post_quietly(url: str, body: dict) -> None:
    """The order whose worker is killed: it gets no answer, which is the point."""
    with contextlib.suppress(OSError):
        http_json("POST", url, body, bearer("storefront"))


def test_a_server_killed_whole_frees_its_slots_when_it_starts_again(processes, process_env, muskie_rod, order_body):
    """Master and workers killed at once: no child_exit hook runs, and the slot would stay taken
    for its 90 s lease, shedding every order. The server started in its place frees it."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    slot = capacity.RedisBackend(settings.REDIS_URL).slot_key(0)
    server, url = _legacy_start(processes, process_env)
    first = threading.Thread(target=lambda: _post_quietly(url, order_body(reference="killed-2")), daemon=True)
    first.start()
    eventually(lambda: client.get(slot) is not None, timeout=30, interval=0.05, message="the order took no slot")
    held_by = client.get(slot)
    processes.stop(server, sig=signal.SIGKILL)
    assert client.get(slot) == held_by  # nobody freed it: the master died with its workers

    again, url = _legacy_start(processes, process_env)

    assert client.get(slot) is None
    assert "freed 1 capacity slot(s) held by processes of this machine that are gone" in processes.log(again)
    first.join(timeout=30)
