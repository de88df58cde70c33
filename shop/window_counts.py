"""Counts in fixed windows of time, kept in the shared cache so that every web process sees the
same ones: what the shop's throttles count (order lookups, verification links, declined cards).
Keys carry no address, email or order number in clear: the cache is not a log."""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def window_now(seconds: int) -> tuple[int, int]:
    """The current window's bucket, and the seconds until the next one."""
    now = time.time()
    bucket = int(now // seconds)
    return bucket, max(1, int((bucket + 1) * seconds - now))


def window_count(key: str, seconds: int) -> int:
    """Adds one to `key` (its window's bucket in it), kept as long as the window; the count."""
    try:
        cache.add(key, 0, seconds + 1)
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, seconds + 1)
        return 1
