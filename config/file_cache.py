"""The embedded defaults' cache: Django's file cache, culled of what has expired instead of at
random, and not listed on every write.

Django's FileBasedCache deletes an expired entry only when it is read again, and lists its whole
directory on every write to count it against MAX_ENTRIES, culling a random third past it. Keys
that carry a window's bucket (the throttles' counts, the dashboard's answers per second) are
never read again: with MAX_ENTRIES high enough not to drop live counts, the directory only grew,
and every write listed it (100,000 files: 0.14 s a write; 300,000: 0.5 s). Here the expired
entries go first, at most once every CULL_SECONDS per process, and the random cull is left for
a directory still over MAX_ENTRIES with live entries only."""

from __future__ import annotations

import time

from django.core.cache.backends.filebased import FileBasedCache

CULL_SECONDS = 10.0


class ExpiringFileCache(FileBasedCache):
    _next_cull = 0.0

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
