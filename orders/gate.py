"""The checks before an order's write, in one Redis round trip where the cache is Redis: the
sold-out figure the last refused reservation left, and the per-address and per-email throttle."""

from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache

from config.cache import redis_client, redis_script
from orders.selectors import remaining_cache_key
from orders.services import SoldOut, Throttled


def throttle_email(email: str) -> str:
    """The address the per-email throttle counts: lowercased, without a `+tag` in the local
    part, so that ann+1@, ann+2@... are one buyer. For the throttle only: the order keeps the
    address as given."""
    local, at, domain = email.strip().lower().rpartition("@")
    if not at:
        return domain
    return f"{local.split('+', 1)[0] or local}@{domain}"


def _throttle_counters(*, client_ip: str | None, email: str, now: float) -> list[tuple[str, int]]:
    """The throttle's counters for an attempt at `now`: (cache key, limit) per client address
    and per email, in the current window."""
    window = settings.ORDERS_THROTTLE_WINDOW
    bucket = int(now // window)
    return [
        (f"orders:throttle:{scope}:{hashlib.sha256(ident.encode()).hexdigest()[:32]}:{bucket}", limit)
        for scope, ident, limit in (
            ("ip", client_ip or "", settings.ORDERS_THROTTLE_PER_IP),
            ("email", throttle_email(email), settings.ORDERS_THROTTLE_PER_EMAIL),
        )
        if ident and limit > 0
    ]


def _throttle_seen_key(idempotency_key: str) -> str:
    return f"orders:throttle:key:{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}"


def _throttled(now: float) -> Throttled:
    window = settings.ORDERS_THROTTLE_WINDOW
    wait = max(1, math.ceil((int(now // window) + 1) * window - now))
    return Throttled("Too many orders from you; try again shortly.", retry_after=wait)


def _throttle(*, idempotency_key: str, client_ip: str | None, email: str) -> None:
    """Counts one order attempt per client address and per email; raises Throttled.

    Repeats of one key count once (concurrent replays must get the first answer, not 429);
    a throttled key is forgotten so that retrying it later counts again."""
    window = settings.ORDERS_THROTTLE_WINDOW
    seen_key = _throttle_seen_key(idempotency_key)
    if not cache.add(seen_key, 1, window):
        return
    now = time.time()
    for key, limit in _throttle_counters(client_ip=client_ip, email=email, now=now):
        cache.add(key, 0, window + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, window + 1)
            count = 1
        if count > limit:
            cache.delete(seen_key)
            raise _throttled(now)


# The checks before the write in one round trip, when the cache is Redis: the sold-out
# figure the last refused reservation left (a sold-out answer is not counted), then the
# throttle as `_throttle` counts it. Keys: the remaining figure, the key's seen-mark, then
# the counters; arguments: the quantity, the window, then each counter's limit.
GATE_LUA = """
local remaining = tonumber(redis.call('GET', KEYS[1]) or '')
if remaining and remaining < tonumber(ARGV[1]) then
  return {'sold_out', remaining}
end
local window = tonumber(ARGV[2])
if not redis.call('SET', KEYS[2], 1, 'NX', 'EX', window) then
  return {'ok', 0}
end
for i = 3, #KEYS do
  local count = redis.call('INCR', KEYS[i])
  if count == 1 then
    redis.call('EXPIRE', KEYS[i], window + 1)
  end
  if count > tonumber(ARGV[i]) then
    redis.call('DEL', KEYS[2])
    return {'throttled', 0}
  end
end
return {'ok', 0}
"""


def gate_check(*, allocation_id: int, quantity: int, idempotency_key: str, client_ip: str | None, email: str) -> None:
    """Raises SoldOut when the cached remaining figure is short, else Throttled when this
    client is over its limits. One Redis script where the cache is Redis."""
    client = redis_client()
    if client is None:
        remaining = cache.get(remaining_cache_key(allocation_id))
        if remaining is not None and remaining < quantity:
            raise SoldOut("Sold out.", remaining=remaining)
        _throttle(idempotency_key=idempotency_key, client_ip=client_ip, email=email)
        return
    now = time.time()
    counters = _throttle_counters(client_ip=client_ip, email=email, now=now)
    keys = [remaining_cache_key(allocation_id), _throttle_seen_key(idempotency_key), *(k for k, _ in counters)]
    args = [quantity, settings.ORDERS_THROTTLE_WINDOW, *(limit for _, limit in counters)]
    script = redis_script(client, GATE_LUA)
    verdict, remaining = script(keys=[cache.make_key(k) for k in keys], args=args, client=client)
    if verdict == b"sold_out":
        raise SoldOut("Sold out.", remaining=remaining)
    if verdict == b"throttled":
        raise _throttled(now)
