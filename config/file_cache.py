"""The embedded defaults' cache: Django's file cache, culled of what has expired instead of at
random, and not listed on every write.

Django's FileBasedCache deletes an expired entry only when it is read again, and lists its whole
directory on every write to count it against MAX_ENTRIES, culling a random third past it. Keys
that carry a window's bucket (the throttles' counts, the dashboard's answers per second) are
never read again: with MAX_ENTRIES high enough not to drop live counts, the directory only grew,
and every write listed it (100,000 files: 0.14 s a write; 300,000: 0.5 s). Here the expired
entries go first, at most once every CULL_SECONDS per process, and the random cull is left for
a directory still over MAX_ENTRIES with live entries only.

Counting is atomic, as on Redis: Django's `add` and `incr` each read, then write, so two
requests counting at once (the card-testing limit's tries, sent together) both read the same
count and one was lost. Here both run under one lock of the cache's directory (flock, which
holds between threads and processes alike)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time

from django.core.cache.backends.filebased import FileBasedCache

CULL_SECONDS = 10.0
COUNTING_LOCK = ".counting.lock"


class ExpiringFileCache(FileBasedCache):
    _next_cull = 0.0

    @contextlib.contextmanager
    def _counting(self):
        os.makedirs(self._dir, exist_ok=True)
        fd = os.open(os.path.join(self._dir, COUNTING_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # which releases the lock

    def add(self, key, value, timeout=None, version=None) -> bool:
        with self._counting():
            return super().add(key, value, timeout, version)

    def incr(self, key, delta=1, version=None):
        with self._counting():
            return super().incr(key, delta, version)

    def _cull(self) -> None:
        now = time.monotonic()
        if now < self._next_cull:
            return
        self._next_cull = now + CULL_SECONDS
        for name in self._list_cache_files():
            try:
                with open(name, "rb") as entry:
                    self._is_expired(entry)  # which deletes it when it has expired
            except (FileNotFoundError, EOFError, ValueError):
                continue
        super()._cull()
