"""The shop's named locks (config.locks): one holder at a time across processes, on Redis and on
the embedded defaults' file lock, and never freed by a holder whose lease has ended."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid

import pytest
from django.core.cache import cache
from django.core.cache.backends.filebased import FileBasedCache

from config import locks
from config.cache import redis_client
from config.locks import lock_held, lock_path
from orders import sales
from orders.sales import SaleBusy


class Busy(Exception):
    pass


@pytest.fixture
def name():
    return f"test:lock:{uuid.uuid4().hex}"


@pytest.fixture
def file_cache(settings, tmp_path, monkeypatch):
    """The embedded defaults: the file cache, and VAR_DIR where its files lie (and SQLite)."""
    monkeypatch.setattr(locks, "database_locks", lambda: False)
    settings.VAR_DIR = tmp_path
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path / "c")}
    }
    assert redis_client() is None
    return tmp_path


@pytest.fixture(params=["file_cache", "postgresql"])
def either_lock(request):
    """The embedded defaults' file lock, and PostgreSQL's advisory lock, in turn."""
    return request.getfixturevalue(request.param)


def test_a_held_lock_refuses_a_second_holder_even_in_the_same_thread_and_is_free_once_left(either_lock, name):
    with (
        lock_held(name, lease_seconds=60, busy=Busy),
        pytest.raises(Busy),
        lock_held(name, lease_seconds=60, busy=Busy),
    ):
        pass
    with lock_held(name, lease_seconds=60, busy=Busy):
        pass


def test_a_lock_is_left_when_its_block_raises(either_lock, name):
    with pytest.raises(RuntimeError), lock_held(name, lease_seconds=60, busy=Busy):
        raise RuntimeError("the change failed")
    with lock_held(name, lease_seconds=60, busy=Busy):
        pass


def test_two_threads_of_one_process_exclude_each_other(either_lock, name):
    taken, outcome = threading.Event(), []

    def other():
        taken.wait(10)
        try:
            with lock_held(name, lease_seconds=60, busy=Busy):
                outcome.append("held")
        except Busy:
            outcome.append("busy")

    thread = threading.Thread(target=other)
    thread.start()
    with lock_held(name, lease_seconds=60, busy=Busy):
        taken.set()
        thread.join(10)
    assert outcome == ["busy"]


def test_the_sale_lock_holds_where_the_file_caches_add_would_let_two_in(file_cache, monkeypatch):
    """Two processes adding the same key to the file cache at once both see it absent before
    either writes it: the sale lock must not be made of that."""
    monkeypatch.setattr(FileBasedCache, "has_key", lambda self, key, version=None: False)
    assert cache.add("k", 1) and cache.add("k", 2)  # the race, as two processes would see it
    with sales.sale_lock(4242):
        with pytest.raises(SaleBusy), sales.sale_lock(4242):
            pass
        with sales.sale_lock(4243):  # another product's sale is another lock
            pass


def _holder(takes_lock: str) -> subprocess.Popen:
    """Another process that runs `takes_lock`, says so, and keeps the lock until it is killed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", takes_lock + "print('held', flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_lock_whose_holder_process_died_is_free(file_cache, name):
    """A holder killed mid-change (SIGKILL) leaves no lock behind: the kernel drops it."""
    path = lock_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = _holder(
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    )
    try:
        with pytest.raises(Busy), lock_held(name, lease_seconds=60, busy=Busy):
            pass
        holder.kill()
        holder.wait(10)
        with lock_held(name, lease_seconds=60, busy=Busy):
            pass
    finally:
        holder.kill()
        holder.wait(10)


@pytest.fixture
def redis(name, monkeypatch):
    """The cache on Redis, the database not PostgreSQL."""
    monkeypatch.setattr(locks, "database_locks", lambda: False)
    client = redis_client()
    if client is None:
        pytest.skip("the Redis lock needs the cache on Redis: set REDIS_URL=redis://...")
    yield client
    client.delete(cache.make_key(name))


def test_on_redis_a_held_lock_refuses_a_second_holder(redis, name):
    with lock_held(name, lease_seconds=60, busy=Busy):
        assert redis.exists(cache.make_key(name))
        with pytest.raises(Busy), lock_held(name, lease_seconds=60, busy=Busy):
            pass
    assert not redis.exists(cache.make_key(name))


def test_on_redis_a_holder_past_its_lease_does_not_free_the_next_holders_lock(redis, name):
    with lock_held(name, lease_seconds=0.2, busy=Busy):
        time.sleep(0.4)  # the lease ends while the first holder still works
        # The next holder takes the lock.
        redis.set(cache.make_key(name), b"next-holder", px=60_000)
    # The first holder's release left the next holder's lock alone.
    assert redis.get(cache.make_key(name)) == b"next-holder"


# --- On PostgreSQL: the database's advisory lock ------------------------------------------


@pytest.fixture
def postgresql(db):
    if not locks.database_locks():
        pytest.skip("the database's lock needs PostgreSQL: set DATABASE_URL=postgres://...")


def test_on_postgresql_a_lock_outlives_its_lease_and_the_cache(postgresql, name):
    """A lease that ran out, or a cache that restarted (its keys lost), let a second change of a
    sale in while the first still moved the sale's hold: the two left the hold short."""
    with lock_held(name, lease_seconds=0.1, busy=Busy):
        time.sleep(0.3)
        cache.clear()
        with pytest.raises(Busy), lock_held(name, lease_seconds=60, busy=Busy):
            pass


def test_on_postgresql_a_lock_whose_holder_process_died_is_free(postgresql, name):
    """A holder killed mid-change (SIGKILL) leaves no lock behind: its connection ends."""
    from django.db import connection

    params = connection.settings_dict
    holder = _holder(
        "import sys, time, psycopg\n"
        f"db = psycopg.connect(dbname={params['NAME']!r}, user={params['USER']!r}, host={params['HOST']!r}, "
        f"port={str(params['PORT'] or 5432)!r}, password={params['PASSWORD']!r})\n"
        f"db.execute('SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))', [{name!r}])\n"
    )
    try:
        with pytest.raises(Busy), lock_held(name, lease_seconds=60, busy=Busy):
            pass
        holder.kill()
        holder.wait(10)
        deadline = time.monotonic() + 10
        while True:  # the server notices the closed connection a moment later
            try:
                with lock_held(name, lease_seconds=60, busy=Busy):
                    break
            except Busy:
                assert time.monotonic() < deadline, "the dead holder's lock was never freed"
                time.sleep(0.1)
    finally:
        holder.kill()
        holder.wait(10)


@pytest.fixture
def idle_transactions_ended(transactional_db):
    """A common guard of a production database: sessions idle in a transaction for longer than
    idle_in_transaction_session_timeout are ended (set on the role or database; PgBouncer's
    idle_transaction_timeout and RDS's parameter groups do the same)."""
    from django.db import connection

    if not locks.database_locks():
        pytest.skip("the database's lock needs PostgreSQL: set DATABASE_URL=postgres://...")
    database = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{database}" SET idle_in_transaction_session_timeout = 1000')
    yield
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{database}" RESET idle_in_transaction_session_timeout')


def test_on_postgresql_a_holder_at_work_keeps_its_lock_where_idle_transactions_are_ended(idle_transactions_ended, name):
    """The lock's transaction is idle while its block calls the legacy API: ended by the server,
    it let a second change of the sale in while the first still moved the hold."""
    from django.db import connections

    second: list[str] = []

    def other_change():
        try:
            with lock_held(name, lease_seconds=60, busy=Busy):
                second.append("held")
        except Busy:
            second.append("busy")
        finally:
            connections.close_all()

    with lock_held(name, lease_seconds=60, busy=Busy):
        time.sleep(2.5)  # the step's legacy calls
        thread = threading.Thread(target=other_change)
        thread.start()
        thread.join(10)
    assert second == ["busy"]
