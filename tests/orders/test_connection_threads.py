"""A database connection does not outlive its thread: granian ends a request thread that was
idle for a while, and Django, which keeps a connection per thread (CONN_MAX_AGE=none) and
closes it only at a request's end, leaves that thread's connection open for good. Each new
connection first closes those of the threads that have ended (config.postgresql)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

import procs
from config.postgresql import base
from tests.conftest import BIN
from tests.orders.conftest import http_json

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _connect_in_a_thread() -> object:
    """The psycopg connection a thread opened and left open when it ended, still referenced
    (as a server that ends threads without clearing their state leaves it)."""
    opened = []

    def work() -> None:
        connections["default"].ensure_connection()
        native_id = threading.get_native_id()
        opened.append((connections["default"].connection, native_id, base._thread_started(native_id)))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    raw, native_id, started = opened[0]
    # join() returns once the thread's Python work is done; the kernel's thread can linger
    # a moment after, and until it has gone the connection is still its thread's.
    deadline = time.monotonic() + 10
    while base._thread_started(native_id) == started and time.monotonic() < deadline:
        time.sleep(0.005)
    return raw


def test_a_new_connection_closes_those_of_threads_that_have_ended():
    connection.ensure_connection()  # this thread's, which lives on
    left = _connect_in_a_thread()
    assert not left.closed
    later = _connect_in_a_thread()  # its connecting closed the first thread's
    assert left.closed and not later.closed
    assert base.orphans_close() == 1  # the second thread has ended too
    assert later.closed and not connection.connection.closed


def test_a_forked_process_never_closes_what_it_inherited(monkeypatch):
    connection.ensure_connection()
    raw = connection.connection
    # As a forked child sees its parent's connection: opened by another process, in a
    # thread that is not its own.
    monkeypatch.setattr(base, "_opened", [(-1, -1, "0", raw)])
    assert base.orphans_close() == 0
    assert not raw.closed and base._opened == []


def _backends() -> list[tuple]:
    """The other sessions on the test database: when each began, its state and last query."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT backend_start, state, left(query, 80) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() ORDER BY backend_start"
        )
        return cursor.fetchall()


def test_a_hot_path_whose_threads_end_when_idle_keeps_no_more_connections_than_threads(
    allocation, process_env, processes
):
    connections.close_all()
    before = len(_backends())
    port = procs.free_port()
    # granian ends a thread idle for 5 s (its shortest); the production servers keep one 600 s.
    argv = procs.granian_argv(
        BIN / "granian", "config.wsgi_hotpath", port=port, workers=1, threads=2, idle_thread_seconds=5
    )
    # Tracing off: its exporter's thread, which writes a sampled request's spans, has a
    # connection of its own.
    env = {**process_env, "CONN_MAX_AGE": "none", "TRACING_ENABLED": "0"}
    procs.wait_for_port(port, process=processes.start(argv, env, name="hotpath"))
    # A status nobody has: the cache misses, so each request reads the database.
    url = f"http://127.0.0.1:{port}/shop/rods/muskie-casting-rod/orders/T999999/{'x' * 16}"

    def rush() -> None:
        with ThreadPoolExecutor(8) as pool:
            assert {answer[0] for answer in pool.map(lambda _: http_json("GET", url), range(40))} == {404}

    for _ in range(2):
        rush()
        time.sleep(7)  # both threads end; the next rush's threads connect anew
    rush()  # without the closing, its threads' two connections and the four before are open
    sessions = _backends()
    assert len(sessions) - before <= 2, sessions
