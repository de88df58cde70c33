"""The checks before an order's write, in one Redis round trip where the cache is Redis: the
sold-out figure the last refused reservation left, the card-testing limits (cards declined for
this address or mailbox, shop.decline_throttle) and the per-address and per-email throttle.

Sold-out answers, what most of a stampede gets, are given from Redis alone when it can tell
that the key never had an order: it is not among the open sale's *known keys*
(orders.known_keys), to which this script adds each key before its order is written. A set
not armed, or armed on another Redis server than this one, sends every sold-out answer to
the database again, which looks the key up as before.

Once the sale has nothing left, a process answers its sold-out buyers from memory: the script
grants it a *lease* (ORDERS_SOLDOUT_LEASE_MS) with the known keys as they stand, and until
the lease ends no key is added to the set and no order is accepted, whatever the stock does
(the script makes such a buyer wait the lease out). So a key outside the copy never had an
order while the lease runs, and a key inside it goes to the database for its first answer."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache, caches

from config.cache import redis_client, redis_script
from orders.known_keys import (
    KNOWN_KEYS_ARMED,
    known_key_member,
    known_keys_epoch_key,
    known_keys_key,
)
from orders.selectors import allocation_remaining, remaining_cache_key
from orders.services import SoldOut, StockChanging, Throttled
from orders.throttle import throttle_count, throttle_counters, throttle_seen_key, throttled
from shop.decline_throttle import DETAIL as DECLINES_DETAIL
from shop.decline_throttle import decline_counters, declines_over

logger = logging.getLogger(__name__)


def soldout_lease_key(allocation_id: int) -> str:
    """Present while some process answers the sale's sold-out buyers from memory."""
    return f"orders:soldout-lease:{allocation_id}"


@dataclass(frozen=True)
class SoldOutLease:
    """A sale with nothing left, answered from this process's memory until `until` (its
    monotonic clock; the lease in Redis outlasts it): `members` is the known keys' copy, taken
    at `version`."""

    until: float
    version: bytes
    members: frozenset[bytes]


# This process's leases, by allocation id (each thread reads it whole; a lease is replaced whole).
_leases: dict[int, SoldOutLease] = {}


def soldout_leases_forget() -> None:
    _leases.clear()


def soldout_lease_running() -> bool:
    """True while this process holds a lease on some sold-out sale: only then may one of its
    buyers be answered from memory."""
    now = time.monotonic()
    return any(lease.until > now for lease in tuple(_leases.values()))


def _lease_take(allocation_id: int, *, sent: float, reply: list) -> None:
    """Keeps the lease the script granted in `reply` (`sold_out_unseen`, 0, version[, members]):
    from `sent`, the moment before the script was sent, so it ends before Redis's does."""
    version = reply[2]
    held = _leases.get(allocation_id)
    if len(reply) > 3:
        members = frozenset(reply[3])
    elif held is not None and held.version == version:
        members = held.members
    else:  # the script judged by a copy this process no longer holds: no lease
        return
    lease_seconds = settings.ORDERS_SOLDOUT_LEASE_MS / 1000
    _leases[allocation_id] = SoldOutLease(until=sent + lease_seconds * 0.99, version=version, members=members)


def soldout_leased(*, allocation_id: int, idempotency_key: str) -> bool:
    """True while this process holds a lease on the sold-out sale and the key is not among its
    known keys: the key never had an order, and none is accepted until the lease ends."""
    lease = _leases.get(allocation_id)
    return (
        lease is not None
        and time.monotonic() < lease.until
        and known_key_member(idempotency_key).encode() not in lease.members
    )


# The checks before the write in one round trip, when the cache is Redis: the sold-out
# figure the last refused reservation left (a sold-out answer is not counted; 'unseen' when
# the armed known-keys set shows the key never had an order, with a lease when nothing is
# left: the set's version, and its members unless the caller's copy is of that version), a
# lease that is running ('leased', how long it has left: no order until it ends), the cards
# declined for this address or mailbox ('declines' at a limit: nothing written), the key added
# to that set, then the throttle as `throttle_count` counts it. Keys: the remaining figure,
# the key's seen-mark, the known keys, the lease, the set's epoch, the declines' counters, then
# the throttle's; arguments: the quantity, the window, the arming mark, the key's member, the
# lease's milliseconds (0: none), the caller's copy's version, how many declines' counters,
# then each counter's limit (KEYS[i]'s is ARGV[i + 2]).
# Before a key is judged unseen, the set must have been armed on this very server (the epoch's
# first word is its run id): one restarted from a snapshot, or a replica promoted, may have
# lost keys added since, so there the mark is dropped and answers go to the database; so they
# do where scripts may not call INFO (an ACL without it) or it names no run id.
GATE_LUA = """
local remaining = tonumber(redis.call('GET', KEYS[1]) or '')
local armed = redis.call('SISMEMBER', KEYS[3], ARGV[3]) == 1
local function armed_here()
  local epoch = redis.call('GET', KEYS[5]) or ''
  local info = redis.pcall('INFO', 'server')
  local server = type(info) == 'string' and string.match(info, 'run_id:(%x+)')
  if server and string.sub(epoch, 1, #server + 1) == server .. ' ' then
    return true
  end
  redis.call('SREM', KEYS[3], ARGV[3])
  return false
end
if remaining and remaining < tonumber(ARGV[1]) then
  if armed and redis.call('SISMEMBER', KEYS[3], ARGV[4]) == 0 and armed_here() then
    local lease = tonumber(ARGV[5])
    if remaining <= 0 and lease > 0 then
      redis.call('SET', KEYS[4], 1, 'PX', lease)
      local version = redis.call('SCARD', KEYS[3]) .. ':' .. (redis.call('GET', KEYS[5]) or '')
      if version == ARGV[6] then
        return {'sold_out_unseen', 0, version}
      end
      return {'sold_out_unseen', 0, version, redis.call('SMEMBERS', KEYS[3])}
    end
    return {'sold_out_unseen', remaining}
  end
  return {'sold_out', remaining}
end
local leased = redis.call('PTTL', KEYS[4])
if leased > 0 then
  return {'leased', leased}
end
local declines = tonumber(ARGV[7])
for i = 6, 5 + declines do
  if (tonumber(redis.call('GET', KEYS[i]) or '') or 0) >= tonumber(ARGV[i + 2]) then
    return {'declines', 0}
  end
end
if armed then
  redis.call('SADD', KEYS[3], ARGV[4])
end
local window = tonumber(ARGV[2])
if not redis.call('SET', KEYS[2], 1, 'NX', 'EX', window) then
  return {'ok', 0}
end
for i = 6 + declines, #KEYS do
  local count = redis.call('INCR', KEYS[i])
  if count == 1 then
    redis.call('EXPIRE', KEYS[i], window + 1)
  end
  if count > tonumber(ARGV[i + 2]) then
    redis.call('DEL', KEYS[2])
    return {'throttled', 0}
  end
end
return {'ok', 0}
"""

# A buyer who meets a running lease waits it out, at most this many times, then is told to retry.
LEASE_WAITS = 3


def gate_check(*, allocation_id: int, quantity: int, idempotency_key: str, client_ip: str | None, email: str) -> None:
    """Raises SoldOut when the cached remaining figure is short, else Throttled when this
    client is over its limits: too many cards declined, or too many orders. One Redis script
    where the cache is Redis, none while this process holds a lease on the sold-out sale and
    the key is not among its known keys."""
    backend = caches["default"]  # once: the cache proxy looks it up on every attribute
    client = redis_client(backend)
    if client is None:
        remaining = cache.get(remaining_cache_key(allocation_id))
        if remaining is not None and remaining < quantity:
            raise SoldOut("Sold out.", remaining=remaining)
        wait = declines_over(address=client_ip, email=email)
        if wait is not None:
            raise Throttled(DECLINES_DETAIL, retry_after=wait)
        throttle_count(member=known_key_member(idempotency_key), client_ip=client_ip, email=email)
        return
    if soldout_leased(allocation_id=allocation_id, idempotency_key=idempotency_key):
        raise SoldOut("Sold out.", remaining=0).never_ordered()
    member = known_key_member(idempotency_key)
    now = time.time()
    counters = throttle_counters(client_ip=client_ip, email=email, now=now)
    declines, declines_wait = decline_counters(address=client_ip, email=email)
    keys = [
        remaining_cache_key(allocation_id),
        throttle_seen_key(member),
        known_keys_key(allocation_id),
        soldout_lease_key(allocation_id),
        known_keys_epoch_key(allocation_id),
        *(k for k, _ in declines),
        *(k for k, _ in counters),
    ]
    make_key = backend.make_key
    keys = [make_key(k) for k in keys]
    script = redis_script(client, GATE_LUA)
    for _ in range(LEASE_WAITS):
        held = _leases.get(allocation_id)
        args = [
            quantity,
            settings.ORDERS_THROTTLE_WINDOW,
            KNOWN_KEYS_ARMED,
            member,
            settings.ORDERS_SOLDOUT_LEASE_MS,
            held.version if held is not None else "",
            len(declines),
            *(limit for _, limit in declines),
            *(limit for _, limit in counters),
        ]
        sent = time.monotonic()
        reply = script(keys=keys, args=args, client=client)
        verdict, remaining = reply[0], reply[1]
        if verdict != b"leased":
            break
        # No sold-out figure, yet a lease runs: the figure lapsed (it lives REMAINING_TTL), or
        # units came back. The database tells which (and caches the figure again); units that
        # came back are sold once the lease is over.
        left = allocation_remaining(allocation_id=allocation_id)
        if left < quantity:
            raise SoldOut("Sold out.", remaining=left)
        time.sleep(min(remaining, settings.ORDERS_SOLDOUT_LEASE_MS) / 1000)
    else:
        raise StockChanging("The stock is changing; try again shortly.", retry_after=1)
    if verdict == b"sold_out_unseen":
        if len(reply) > 2:
            _lease_take(allocation_id, sent=sent, reply=reply)
        raise SoldOut("Sold out.", remaining=remaining).never_ordered()
    if verdict == b"sold_out":
        raise SoldOut("Sold out.", remaining=remaining)
    if verdict == b"declines":
        raise Throttled(DECLINES_DETAIL, retry_after=declines_wait)
    if verdict == b"throttled":
        raise throttled(now)
