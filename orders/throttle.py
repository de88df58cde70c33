"""The per-client throttle of order attempts: per client address and per email (its `+tag`
dropped), counted in the cache in fixed windows of ORDERS_THROTTLE_WINDOW seconds. Where the
cache is Redis the gate's script counts them in its one round trip (`orders.gate`); these
are the counters' names and limits, and the count through Django's cache API elsewhere."""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache

from orders.services import Throttled
from shop.order_input import client_network, mailbox_key
from shop.window_counts import digest


def throttle_counters(*, client_ip: str | None, email: str, now: float) -> list[tuple[str, int]]:
    """The throttle's counters for an attempt at `now`: (cache key, limit) per client address
    and per email, in the current window."""
    window = settings.ORDERS_THROTTLE_WINDOW
    bucket = int(now // window)
    return [
        (f"orders:throttle:{scope}:{digest(ident)}:{bucket}", limit)
        for scope, ident, limit in (
            ("ip", client_network(client_ip) if client_ip else "", settings.ORDERS_THROTTLE_PER_IP),
            ("email", mailbox_key(email), settings.ORDERS_THROTTLE_PER_EMAIL),
        )
        if ident and limit > 0
    ]


def throttle_seen_key(member: str) -> str:
    """The seen-mark of the key whose known-keys `member` (its SHA-256 in hex) this is."""
    return f"orders:throttle:key:{member[:32]}"


def throttled(now: float) -> Throttled:
    window = settings.ORDERS_THROTTLE_WINDOW
    wait = max(1, math.ceil((int(now // window) + 1) * window - now))
    return Throttled("Too many orders from you; try again shortly.", retry_after=wait)


def throttle_count(*, member: str, client_ip: str | None, email: str) -> None:
    """Counts one order attempt per client address and per email, through Django's cache API
    (where the cache is not Redis: there the gate's script counts them); raises Throttled.
    `member`: the key's known-keys member.

    Repeats of one key count once (concurrent replays must get the first answer, not 429);
    a throttled key is forgotten so that retrying it later counts again."""
    window = settings.ORDERS_THROTTLE_WINDOW
    seen_key = throttle_seen_key(member)
    if not cache.add(seen_key, 1, window):
        return
    now = time.time()
    for key, limit in throttle_counters(client_ip=client_ip, email=email, now=now):
        cache.add(key, 0, window + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, window + 1)
            count = 1
        if count > limit:
            cache.delete(seen_key)
            raise throttled(now)
