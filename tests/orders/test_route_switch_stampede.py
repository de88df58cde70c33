"""One Idempotency-Key, one order, whichever origin the edge chose: 60 buyers retry their own
order while the merchant switches the route (and the sale with it) off and on twice. Real
gunicorn serving the all-in-one server (its edge middleware applies the routes), a real Celery
worker, PostgreSQL."""

from __future__ import annotations

import random
import threading
import urllib.error
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import call_command

from legacy_client import reference_for_key
from orders.models import HotOrder, SaleAllocation
from shop.models import PlacedOrder
from tests.conftest import eventually
from tests.edge.conftest import ensure_origins
from tests.orders.all_in_one import all_in_one_start
from tests.orders.conftest import ORDERS_URL, http_json, legacy_references, order_body

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BUYERS = 60  # ten at a time: ten buyers are in flight at every switch
SENDS_PER_BUYER = 3  # every buyer sends its order three times, as an impatient page would
MAX_SENDS = 8  # and more when it got no definite answer (busy, unreachable)


def _send(base: str, key: str, body: dict) -> tuple[int, dict, str]:
    try:
        status, data, headers = http_json("POST", base + ORDERS_URL, body, {"Idempotency-Key": key})
    except (urllib.error.URLError, OSError, ValueError):
        return 0, {}, ""
    return status, data, headers.get("X-Edge-Route", "")


def _switch(*, on: bool, allocation: SaleAllocation) -> None:
    """The merchant's switch: the route and the sale together (a closed sale's product is
    sold by the monolith again)."""
    call_command("edge_route", "enable" if on else "disable", "muskie-sale")
    allocation.is_hot = on
    allocation.save()


def test_retries_across_route_switches_give_each_key_exactly_one_order(
    processes, process_env, product, allocation, worker_env
):
    product.stock = 1000
    product.save()
    allocation.allocated = 400
    allocation.save()
    ensure_origins()  # created by a data migration, which a transactional test's flush removed
    call_command(
        "edge_route", "add", "muskie-sale", "/shop/rods/muskie-casting-rod/*", "--origin", "hotpath", "--enable"
    )
    server_env = {**process_env, "ORDERS_THROTTLE_PER_IP": "0", "LEGACY_CAPACITY": "4"}
    base = all_in_one_start(processes, server_env, workers=2, threads=8)
    processes.celery_worker({**worker_env, "LEGACY_API_URL": base + "/legacy-api", "LEGACY_CAPACITY": "4"})

    answers: dict[str, list[tuple[int, dict, str]]] = defaultdict(list)
    finished = Counter()
    lock = threading.Lock()

    def buyer(i: int) -> None:
        key, body = uuid.uuid4().hex, order_body(email=f"stampede{i}@example.com")
        sends = 0
        while sends < MAX_SENDS:
            status, data, route = _send(base, key, body)
            sends += 1
            with lock:
                answers[key].append((status, data, route))
            definite = status in (201, 202, 409, 404, 422, 400)
            if sends >= SENDS_PER_BUYER and definite:
                break
            threading.Event().wait(random.uniform(0.005, 0.05))
        with lock:
            finished["buyers"] += 1

    def merchant() -> None:
        # Off and on twice, each time with buyers in flight (at a fifth, two, three and four fifths).
        for fifth, on in ((1, False), (2, True), (3, False), (4, True)):
            milestone = BUYERS * fifth // 5
            eventually(lambda m=milestone: finished["buyers"] >= m, timeout=300, interval=0.02)
            _switch(on=on, allocation=SaleAllocation.objects.get(pk=allocation.pk))

    switcher = threading.Thread(target=merchant)
    switcher.start()
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(buyer, range(BUYERS)))
    switcher.join()

    taken = {key for key, got in answers.items() if any(status in (201, 202) for status, _, _ in got)}
    eventually(
        lambda: not HotOrder.objects.filter(status="processing").exists(),
        timeout=240,
        message="the worker did not settle every accepted order",
    )

    # Every key that got an order was told one number, whichever origin answered.
    statuses = Counter()
    crossed = 0
    for key in taken:
        got = answers[key]
        numbers = {data["number"] for status, data, _ in got if status in (201, 202)}
        assert len(numbers) == 1, (key, got)
        statuses.update(status for status, _, _ in got)
        crossed += len({route for status, _, route in got if status in (201, 202)}) > 1
    assert statuses[201] and statuses[202], statuses  # both origins took orders
    assert crossed, "no buyer's retries crossed a switch"

    # The books: one legacy order per key that got 201 or 202, none placed twice.
    references = legacy_references()
    assert len(references) == len(set(references))
    assert set(references) == {reference_for_key(key) for key in taken}
    assert len(references) == len(taken)
    # Each side's record of them: one per key, never both a sale order and a shop order that differ.
    hot = dict(HotOrder.objects.filter(status="complete").values_list("idempotency_key", "legacy_number"))
    placed = dict(PlacedOrder.objects.values_list("reference", "number"))
    for key in taken:
        assert key in hot or reference_for_key(key) in placed, key
        if key in hot and reference_for_key(key) in placed:
            assert hot[key] == placed[reference_for_key(key)], key
