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
import pickle
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
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

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        with self._counting():
            return super().add(key, value, timeout, version)

    def incr(self, key, delta=1, version=None):
        # Django's incr writes the count back with the default timeout (300 s): an hour's window
        # was forgotten five minutes after its last count. Kept to its expiry, as Redis keeps a TTL.
        with self._counting():
            try:
                with open(self._key_to_file(key, version), "rb") as f:
                    expires = pickle.load(f)  # noqa: S301 - the expiry Django wrote first in its own file
            except (FileNotFoundError, EOFError, pickle.UnpicklingError):
                raise ValueError(f"Key '{key}' not found") from None
            value = self.get(key, version=version)
            left = None if expires is None else expires - time.time()
            if value is None or (left is not None and left <= 0):
                raise ValueError(f"Key '{key}' not found")
            self.set(key, value + delta, left, version)
            return value + delta

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
