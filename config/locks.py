"""A lock named by a string, held for a `with` block across the shop's processes, taken
without waiting: a caller that finds it held is told at once (`busy`).

Where the database is PostgreSQL, the lock is the database's: an advisory lock taken in a
transaction of a connection of its own, held while the block runs. A holder that dies loses
it with its connection; one still working never loses it, however long its block takes (a lease
could run out under it), nor can a cache that restarts or evicts forget it. Taken per
transaction, it holds behind a pooler that hands server sessions out per transaction too.

Otherwise, where the default cache is Redis, the lock is redis-py's: a key set with NX and a
lease, and released by a script only while it is still its holder's, so a holder whose lease
ran out never frees the lock the next holder took.

Otherwise (the embedded defaults: one machine, SQLite, the file cache) it is an fcntl lock on a
file under VAR_DIR/locks, which the kernel drops when its holder's process dies. Django's file
cache cannot serve: its `add` looks for the key, then writes it, so two processes could both
take a lock made of it."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from redis.exceptions import LockError

from config.cache import redis_client

logger = logging.getLogger(__name__)


def lock_path(name: str) -> Path:
    """The file that stands for the lock `name` where the cache is not Redis."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    return Path(settings.VAR_DIR) / "locks" / f"{digest}.lock"


def database_locks() -> bool:
    """Whether the locks are the database's (PostgreSQL)."""
    return connections[DEFAULT_DB_ALIAS].vendor == "postgresql"


def lock_held(name: str, *, lease_seconds: float, busy: Callable[[], Exception]):
    """Holds the lock `name` while the block runs; raises `busy()` when another holds it. On
    Redis (without PostgreSQL) the lock ends by itself after `lease_seconds`: longer than the
    block can take."""
    if database_locks():
        return _database_lock_held(name, busy=busy)
    return _cache_lock_held(name, lease_seconds=lease_seconds, busy=busy)


@contextmanager
def _database_lock_held(name: str, *, busy: Callable[[], Exception]) -> Iterator[None]:
    database = connections.create_connection(DEFAULT_DB_ALIAS)  # not this thread's: its own session
    try:
        database.set_autocommit(False)
        with database.cursor() as cursor:
            # The transaction stays idle while the block works (legacy calls of up to
            # LEGACY_API_TIMEOUT each): a server, role or pooler that ends idle transactions
            # (idle_in_transaction_session_timeout) would end the lock under a holder still at
            # work, and nobody would be told. Not for this session.
            cursor.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            cursor.execute("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))", [name])
            if not cursor.fetchone()[0]:
                raise busy()
        yield
        _still_held(database, name)
    finally:
        database.close()  # which ends its transaction, and the lock with it


def _still_held(database, name: str) -> None:
    """Says so when the lock's session ended under its block (the database restarted, a
    pooler or an administrator ended it): another change may have run beside this one, and
    the reconciliation should look at the sale now."""
    try:
        with database.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        logger.error("lock %s was lost while its block ran (its session ended): check the sale", name)


@contextmanager
def _cache_lock_held(name: str, *, lease_seconds: float, busy: Callable[[], Exception]) -> Iterator[None]:
    client = redis_client()
    if client is not None:
        lock = client.lock(cache.make_key(name), timeout=lease_seconds, blocking=False)
        if not lock.acquire():
            raise busy()
        try:
            yield
        finally:
            try:
                lock.release()
            except LockError:
                logger.warning("lock %s had ended with its lease before its holder was done", name)
        return
    path = lock_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            # An fcntl lock belongs to the open file: two threads of one process exclude each
            # other too, each with a descriptor of its own.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy() from None
        yield
    finally:
        os.close(fd)  # which releases the lock
