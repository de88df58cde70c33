"""A worker waiting for a legacy-capacity permit sleeps until something changes: a release
announced on PostgreSQL, or the end of a held permit's lease (a dead worker's permit frees
itself then). With the fallback wait made an hour long, both still wake it at once, after a
handful of looks at the permits' table."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models.functions import Now
from django.test.utils import CaptureQueriesContext

from orders import permits
from orders.models import LegacySlot
from tests.conftest import eventually

HOUR = 3600.0


def looks_at_permits(queries: CaptureQueriesContext) -> int:
    return sum(1 for q in queries.captured_queries if "orders_legacyslot" in q["sql"] and q["sql"].startswith("SELECT"))


def waiting_in_the_database() -> bool:
    """Whether another session sits idle after asking when the next lease ends: the waiter is
    asleep on its LISTEN."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'idle' "
            "AND query LIKE %s AND datname = current_database()",
            ['%"orders_legacyslot"."lease_until"%db_now%'],
        )
        return cursor.fetchone()[0] > 0


class Waiter(threading.Thread):
    """A worker asking for the one permit, for up to an hour, counting its looks."""

    def __init__(self):
        super().__init__(daemon=True)
        self.got: list[int | None] = []
        self.looks = 0

    def run(self) -> None:
        try:
            with CaptureQueriesContext(connection) as queries:
                self.got.append(permits.legacy_slot_acquire(holder="waiting", wait_seconds=HOUR))
            self.looks = looks_at_permits(queries)
        finally:
            connection.close()


@pytest.fixture
def one_permit_for_an_hour(settings, monkeypatch):
    settings.LEGACY_CAPACITY = settings.ORDERS_LEGACY_CONCURRENCY = 1
    settings.LEGACY_API_TIMEOUT = HOUR  # leases last an hour
    monkeypatch.setattr(permits, "SLOT_LISTEN_MAX_SECONDS", HOUR)  # and so would a fallback wait
    assert permits.legacy_slot_acquire(holder="busy", wait_seconds=0) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_released_permit_wakes_the_waiting_worker_without_a_poll(one_permit_for_an_hour):
    waiter = Waiter()
    waiter.start()
    eventually(waiting_in_the_database, timeout=30, message="the waiter never went to sleep on its LISTEN")

    permits.legacy_slot_release(number=1, holder="busy")
    waiter.join(timeout=60)

    assert not waiter.is_alive(), "a release did not wake the waiter: it waits for the hour"
    assert waiter.got == [1]
    assert LegacySlot.objects.get(number=1).holder == "waiting"
    # Look, create the rows, look, LISTEN and look, ask when the lease ends, sleep; look on waking.
    assert waiter.looks <= 5, waiter.looks


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_dead_worker_s_permit_is_taken_when_its_lease_ends_without_a_poll(one_permit_for_an_hour):
    # The holder died: nobody releases its permit, whose lease ends in a second.
    LegacySlot.objects.filter(number=1).update(lease_until=Now() + timedelta(seconds=1))
    waiter = Waiter()
    waiter.start()
    waiter.join(timeout=60)

    assert not waiter.is_alive(), "the end of the lease did not wake the waiter"
    assert waiter.got == [1]
    assert waiter.looks <= 6, waiter.looks


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_waiter_whose_session_ends_fails_as_the_database_away_and_is_retried(one_permit_for_an_hour):
    """A PostgreSQL restart (or a session ended by the server) while a worker slept on its
    LISTEN raised psycopg's own error, not Django's: the task took it for a bug and
    dead-lettered the order (or, the database still down, left it claimed for the sweep)."""
    from orders.tasks import RETRYABLE

    failed: list[BaseException] = []

    class Failing(Waiter):
        def run(self) -> None:
            try:
                super().run()
            except BaseException as exc:  # what the task would see
                failed.append(exc)

    waiter = Failing()
    waiter.start()
    eventually(waiting_in_the_database, timeout=30, message="the waiter never went to sleep on its LISTEN")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND state = 'idle' AND query LIKE %s AND datname = current_database()",
            ['%"orders_legacyslot"."lease_until"%db_now%'],
        )
    waiter.join(timeout=30)

    assert not waiter.is_alive(), "the waiter slept on through the end of its session"
    assert len(failed) == 1, waiter.got
    assert isinstance(failed[0], RETRYABLE), f"{type(failed[0])!r} is not retried: the order would be dead-lettered"
