"""The legacy-capacity permits: at most ORDERS_LEGACY_CONCURRENCY (below LEGACY_CAPACITY) calls
to the legacy API at once across every worker process, leased on the database's clock.

On PostgreSQL a waiting worker sleeps until a permit is released (LISTEN/NOTIFY) or until the
earliest lease of the permits held ends (a permit whose worker died frees itself then, and
nobody is told), whichever comes first: it looks again only when something changed. Elsewhere
(SQLite) it looks again after waits that back off."""

from __future__ import annotations

import logging
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models.functions import Now

from orders.models import LegacySlot

logger = logging.getLogger(__name__)

# Woken on PostgreSQL when a permit is released, so waiting workers need not poll for it.
SLOT_RELEASED_CHANNEL = "orders_legacy_slot_released"
# Without LISTEN (SQLite), a waiting worker looks again after 10 ms, then twice as long each
# time up to this, with jitter, so a long wait costs the database little.
SLOT_WAIT_MAX_SECONDS = 0.5
# With LISTEN, the longest a worker sleeps between two looks when no release is announced and
# no lease ends: only a notification lost with its connection is ever waited for this long.
SLOT_LISTEN_MAX_SECONDS = 5.0


def legacy_slot_lease_seconds() -> float:
    # Longer than any legacy call (connect + read timeout), so a permit outlives its call.
    return settings.LEGACY_API_TIMEOUT + 2 + 5


def legacy_slot_acquire(*, holder: str, wait_seconds: float) -> int | None:
    """Takes one of ORDERS_LEGACY_CONCURRENCY permits (at most LEGACY_CAPACITY) shared by every
    worker process; None if none frees up within `wait_seconds`. A permit is leased on the
    database's clock (workers' own clocks may disagree): one held by a dead worker expires."""
    capacity = min(settings.ORDERS_LEGACY_CONCURRENCY, settings.LEGACY_CAPACITY)
    deadline = time.monotonic() + wait_seconds
    created = listening = False
    delay = 0.01
    try:
        while True:
            number = _slot_take(holder=holder, capacity=capacity)
            if number is not None:
                return number
            if not created:  # none free: the permits' rows may not all exist yet (a new capacity)
                LegacySlot.objects.bulk_create(
                    [LegacySlot(number=n) for n in range(1, capacity + 1)], ignore_conflicts=True
                )
                created = True
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not listening:  # then look once more: a release just before LISTEN is not missed
                listening = _slot_releases_listen()
                if listening:
                    continue
            if listening:
                # Until a release is announced or the next lease ends, not a round of polls.
                _slot_release_wait(min(remaining, _next_lease_end_seconds(capacity)), listening=True)
                continue
            _slot_release_wait(min(remaining, delay * (0.5 + secrets.randbelow(500) / 1000)), listening=False)
            delay = min(delay * 2, SLOT_WAIT_MAX_SECONDS)
    finally:
        if listening:
            _slot_releases_unlisten()


# PostgreSQL takes a free permit in one statement (one round trip, no transaction around it):
# the first free row, skipping one another worker is taking at this moment.
_TAKE_SQL = """
UPDATE orders_legacyslot SET holder = %(holder)s,
       lease_until = STATEMENT_TIMESTAMP() + make_interval(secs => %(lease)s)
 WHERE number = (SELECT number FROM orders_legacyslot
                  WHERE number <= %(capacity)s AND (lease_until IS NULL OR lease_until <= STATEMENT_TIMESTAMP())
                  ORDER BY number LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING number"""

# And releases one, telling the workers waiting for it (delivered at commit) only when it
# did release it.
_RELEASE_SQL = """
WITH released AS (UPDATE orders_legacyslot SET holder = '', lease_until = NULL
                   WHERE number = %(number)s AND holder = %(holder)s RETURNING number)
SELECT pg_notify(%(channel)s, '') FROM released"""


def _slot_take(*, holder: str, capacity: int) -> int | None:
    """The number of the free permit taken for `holder`, or None when none is free."""
    lease = legacy_slot_lease_seconds()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_TAKE_SQL, {"holder": holder, "lease": lease, "capacity": capacity})
            row = cursor.fetchone()
        return row[0] if row else None
    with transaction.atomic():
        slot = (
            LegacySlot.objects.select_for_update(skip_locked=True)
            .filter(number__lte=capacity)
            .exclude(lease_until__gt=Now())
            .annotate(db_now=Now())
            .order_by("number")
            .first()
        )
        if slot is None:
            return None
        slot.holder = holder
        slot.lease_until = slot.db_now + timedelta(seconds=lease)
        slot.save(update_fields=["holder", "lease_until"])
        return slot.number


def _next_lease_end_seconds(capacity: int) -> float:
    """Seconds until the first lease of the permits held ends, on the database's clock (a
    permit locked by a worker taking it has a lease that ends later still); at most
    SLOT_LISTEN_MAX_SECONDS."""
    row = (
        LegacySlot.objects.filter(number__lte=capacity, lease_until__isnull=False)
        .annotate(db_now=Now())
        .order_by("lease_until")
        .values_list("lease_until", "db_now")
        .first()
    )
    if row is None:
        return SLOT_LISTEN_MAX_SECONDS
    lease_until, db_now = row
    # A little past the end, so the next look finds it ended.
    return min(max((lease_until - db_now).total_seconds(), 0.0) + 0.01, SLOT_LISTEN_MAX_SECONDS)


def _slot_releases_listen() -> bool:
    """Listens for released permits on PostgreSQL (outside a transaction only: a LISTEN takes
    effect at commit); False where the waits just back off."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"LISTEN {SLOT_RELEASED_CHANNEL}")
    return True


def _slot_releases_unlisten() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"UNLISTEN {SLOT_RELEASED_CHANNEL}")
    except DatabaseError:  # the connection is gone, and its LISTEN with it
        logger.warning("could not stop listening for released permits", exc_info=True)


def _slot_release_wait(seconds: float, *, listening: bool) -> None:
    if not listening:
        time.sleep(seconds)
        return
    # Through Django's wrapper, as a query's error would be: psycopg's own OperationalError (the
    # server restarted, or ended the session, while we slept) is no database error the task
    # retries, and the order was dead-lettered as a bug.
    with connection.wrap_database_errors:
        for _notice in connection.connection.notifies(timeout=seconds, stop_after=1):
            pass


def legacy_slot_release(*, number: int, holder: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_RELEASE_SQL, {"number": number, "holder": holder, "channel": SLOT_RELEASED_CHANNEL})
        return
    LegacySlot.objects.filter(number=number, holder=holder).update(holder="", lease_until=None)
