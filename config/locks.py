"""A lock named by a string, held for a `with` block across the shop's processes, taken
without waiting: a caller that finds it held is told at once (`busy`).

Where the default cache is Redis, the lock is redis-py's: a key set with NX and a lease, and
released by a script only while it is still its holder's, so a holder whose lease ran out
never frees the lock the next holder took. It holds across machines, and a holder that died
loses it when the lease ends.

Otherwise (the embedded defaults: one machine, the file cache) it is an fcntl lock on a file
under VAR_DIR/locks, which the kernel drops when its holder's process dies. Django's file
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
from redis.exceptions import LockError

from config.cache import redis_client

logger = logging.getLogger(__name__)


def lock_path(name: str) -> Path:
    """The file that stands for the lock `name` where the cache is not Redis."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    return Path(settings.VAR_DIR) / "locks" / f"{digest}.lock"


@contextmanager
def lock_held(name: str, *, lease_seconds: float, busy: Callable[[], Exception]) -> Iterator[None]:
    """Holds the lock `name` while the block runs; raises `busy()` when another holds it. On
    Redis the lock ends by itself after `lease_seconds`: longer than the block can take."""
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
