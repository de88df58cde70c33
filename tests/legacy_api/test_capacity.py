"""The capacity gate: slots shared across processes (Redis leases or file locks) and the figures."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest
import urllib3
from django.conf import settings as django_settings

from legacy_api.capacity import FileBackend, RedisBackend
from legacy_api.models import Order
from tests.conftest import eventually
from tests.legacy_api.conftest import assert_nothing_written, bearer

ORDER_JSON = (
    b'{"reference": "%s", "customer": {"name": "Ada Angler", "email": "ada@example.com"},'
    b' "lines": [{"product": "muskie-casting-rod", "quantity": 1}], "payment": {"card_number": "4242424242424242"}}'
)


@pytest.fixture(params=["files", pytest.param("redis", marks=pytest.mark.redis)])
def gate(request, tmp_path):
    """Each backend, fresh: files in a folder of this test, Redis in the test's database."""
    if request.param == "files":
        return FileBackend(tmp_path / "legacy-slots")
    return RedisBackend(django_settings.REDIS_URL)


def test_slots_run_out_at_capacity_and_come_back_when_released(gate):
    held = [gate.slot_acquire(3) for _ in range(3)]

    assert all(handle is not None for handle in held)
    assert gate.slot_acquire(3) is None
    gate.slot_release(held.pop())
    again = gate.slot_acquire(3)
    assert again is not None
    for handle in [*held, again]:
        gate.slot_release(handle)


def test_figures_count_requests_in_flight_their_peak_and_the_shed(gate):
    tokens = [gate.request_enter() for _ in range(3)]
    gate.request_exit(tokens.pop())
    gate.shed_record()

    assert gate.stats() == {"inflight": 2, "peak_inflight": 3, "shed": 1}
    for token in tokens:
        gate.request_exit(token)
    assert gate.stats() == {"inflight": 0, "peak_inflight": 3, "shed": 1}
    gate.stats_reset()
    assert gate.stats() == {"inflight": 0, "peak_inflight": 0, "shed": 0}


def test_reset_keeps_the_requests_still_in_flight_as_the_new_peak(gate):
    token = gate.request_enter()
    gate.request_enter()
    gate.stats_reset()
    gate.request_exit(token)

    assert gate.stats()["peak_inflight"] == 2


def test_file_slot_of_a_process_that_died_is_free_again(tmp_path):
    gate = FileBackend(tmp_path / "legacy-slots")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import fcntl, os, sys, time
                fd = os.open({str(gate.slot_path(0))!r}, os.O_RDWR | os.O_CREAT)
                fcntl.flock(fd, fcntl.LOCK_EX)
                print("held", flush=True)
                time.sleep(600)
                """
            ),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline() == b"held\n"
        assert gate.slot_acquire(1) is None
    finally:
        holder.kill()
        holder.wait()

    handle = gate.slot_acquire(1)
    assert handle is not None
    gate.slot_release(handle)


@pytest.mark.redis
def test_redis_slot_is_a_lease_that_only_its_holder_can_release():
    gate = RedisBackend(django_settings.REDIS_URL)
    key, token = gate.slot_acquire(1)

    assert 0 < gate.client.pttl(key) <= gate.lease_ms
    gate.slot_release((key, "someone-else"))
    assert gate.slot_acquire(1) is None
    gate.slot_release((key, token))
    assert gate.slot_acquire(1) is not None


@pytest.mark.redis
def test_redis_slot_of_a_holder_that_never_released_expires():
    gate = RedisBackend(django_settings.REDIS_URL, lease_ms=200)
    assert gate.slot_acquire(1) is not None
    assert gate.slot_acquire(1) is None

    eventually(lambda: gate.slot_acquire(1) is not None, timeout=10, interval=0.05)


# --- Across the processes of a real server -----------------------------------------------


def _serve_with_capacity_two(processes, env) -> str:
    env = {**env, "LEGACY_CAPACITY": "2"}
    return processes.gunicorn("config.wsgi_legacy", env, workers=2, threads=4, name="legacy")


def _post(http: urllib3.PoolManager, url: str, reference: str) -> urllib3.BaseHTTPResponse:
    return http.request(
        "POST",
        f"{url}/legacy-api/orders",
        body=ORDER_JSON % reference.encode(),
        headers={"Content-Type": "application/json", **bearer("storefront")},
        timeout=30,
    )


def _shed_and_let_through(url: str, gate, muskie_rod) -> None:
    """With both slots held by this process, the server's workers shed; with one freed, they place."""
    http = urllib3.PoolManager()
    # The figures of earlier runs may be left in the files: start this one from zero.
    http.request("POST", f"{url}/legacy-api/stats/reset", headers=bearer("merchant"))
    held = [gate.slot_acquire(2), gate.slot_acquire(2)]
    assert None not in held
    try:
        shed = [_post(http, url, f"shed-{i}") for i in range(4)]
        assert [r.status for r in shed] == [503] * 4
        assert all(r.headers["Retry-After"] == "1" for r in shed)
        assert_nothing_written(muskie_rod, stock=10)
        stats = http.request("GET", f"{url}/legacy-api/stats", headers=bearer("merchant")).json()
        assert (stats["capacity"], stats["shed"]) == (2, 4)
        gate.slot_release(held.pop())
        placed = _post(http, url, "placed-1")
    finally:
        for handle in held:
            gate.slot_release(handle)
    assert placed.status == 201, placed.data
    assert Order.objects.get().reference == "placed-1"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_file_slots_are_shared_by_every_worker_process(processes, process_env, muskie_rod):
    env = {key: value for key, value in process_env.items() if key != "REDIS_URL"}
    url = _serve_with_capacity_two(processes, env)

    _shed_and_let_through(url, FileBackend(django_settings.VAR_DIR / "legacy-slots"), muskie_rod)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_redis_slots_are_shared_by_every_worker_process(processes, process_env, muskie_rod):
    url = _serve_with_capacity_two(processes, process_env)

    _shed_and_let_through(url, RedisBackend(django_settings.REDIS_URL), muskie_rod)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_stampede_is_either_placed_or_shed_and_shed_orders_write_nothing(processes, process_env, muskie_rod):
    muskie_rod.stock = 100
    muskie_rod.save()
    url = _serve_with_capacity_two(processes, process_env)
    http = urllib3.PoolManager(maxsize=24)
    http.request("POST", f"{url}/legacy-api/stats/reset", headers=bearer("merchant"))
    barrier = threading.Barrier(24)
    statuses: list[int] = []

    def buyer(index: int) -> None:
        barrier.wait()
        statuses.append(_post(http, url, f"stampede-{index}").status)

    threads = [threading.Thread(target=buyer, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    placed, shed = statuses.count(201), statuses.count(503)
    assert placed + shed == 24
    assert Order.objects.count() == placed
    muskie_rod.refresh_from_db()
    assert muskie_rod.stock == 100 - placed
    stats = http.request("GET", f"{url}/legacy-api/stats", headers=bearer("merchant")).json()
    assert stats["shed"] == shed
    # Told apart by caller: whether the hot path's workers or the storefront were turned away.
    assert (stats["callers"]["storefront"]["shed"], stats["callers"]["hotpath"]["shed"]) == (shed, 0)
    assert stats["inflight"] == 0


def test_known_callers_are_counted_apart_and_unknown_names_are_not(db):
    from legacy_api import capacity

    capacity.stats_reset()
    with (
        capacity.in_flight(caller="hotpath"),
        capacity.in_flight(caller="storefront"),
        capacity.in_flight(caller="somebody-else"),
    ):
        figures = capacity.stats()
    assert figures["peak_inflight"] == 3
    assert figures["callers"]["hotpath"] == {"inflight": 1, "peak_inflight": 1, "shed": 0}
    assert figures["callers"]["storefront"] == {"inflight": 1, "peak_inflight": 1, "shed": 0}
    assert set(figures["callers"]) == {"hotpath", "storefront", "merchant"}
    assert capacity.stats()["callers"]["hotpath"]["inflight"] == 0
