"""Counts in fixed windows of time, kept in the shared cache so that every web process sees the
same ones: what the shop's throttles count (order lookups, verification links, declined cards).
Keys carry no address, email or order number, in clear or in a hash anyone could make: the
cache is not a log."""

from __future__ import annotations

import functools
import hashlib
import hmac
import time

from django.conf import settings
from django.core.cache import cache


@functools.cache
def _digest_key(secret: str) -> bytes:
    return hashlib.sha256(b"shop.window_counts.digest:" + secret.encode()).digest()


def digest(value: str) -> str:
    """What a counter's key holds of an address, a mailbox or an order number: a keyed hash
    (HMAC-SHA256 under a key derived from SECRET_KEY). A plain hash of an IPv4 address or of
    a sequential order number is undone by hashing every candidate."""
    return _digest(settings.SECRET_KEY, value)


@functools.lru_cache(maxsize=4096)
def _digest(secret: str, value: str) -> str:
    # Kept for the last few thousand: an order's gate names each of its buyer's address and
    # mailbox in two counters' keys (orders.throttle, shop.decline_throttle).
    return hmac.new(_digest_key(secret), value.encode(), hashlib.sha256).hexdigest()[:32]


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
