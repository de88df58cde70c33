"""An open sale's *known keys*: a Redis set of every Idempotency-Key that may have an order,
so that a sold-out answer can be given from Redis alone to a key outside it (orders.gate).

The set is armed when the sale opens, with every key the product's hot orders were taken
with and every key the monolith placed an order with or declined a card for, in the last
ORDERS_KNOWN_KEYS_HOURS. After that, the gate's script adds each key before its order is
written, and every key the monolith answers so afterwards is added as its receipt (or its
refusal) is written and again once it is committed (the monolith still sells the product's
open stock until the sale's window starts, and finishes the orders it had under way when the
sale opened).

The set is trusted only as complete as it was armed. A set that lost its arming mark (a
Redis restart, an eviction: the mark goes with the set) sends every sold-out answer to the
database again, which looks the key up as before. So does a set on a server other than the
one that armed it (its epoch names that server's run id): a Redis restarted from its
snapshot, or a replica promoted, keeps the mark but may have lost the keys added since."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from config.cache import redis_client, redis_script
from legacy_client.references import reference_for_key
from orders.models import HotOrder, SaleAllocation, SaleState
from shop.models import BuyNowRefusal, PlacedOrder

logger = logging.getLogger(__name__)

KNOWN_KEYS_ARMED = "*armed*"
# How far back the arming looks again, once armed, for the monolith's receipts committed while
# it ran: a receipt's placed_at is its insert's time, a moment before its commit.
ARMING_CATCH_UP = timedelta(seconds=60)


def known_keys_key(allocation_id: int) -> str:
    return f"orders:known-keys:{allocation_id}"


def known_keys_epoch_key(allocation_id: int) -> str:
    """Set anew at each arming, "<server run id> <random>": with the set's size, the version a
    lease's copy was taken at; its first word, the server the set is complete on."""
    return f"orders:known-keys-epoch:{allocation_id}"


def known_key_member(idempotency_key: str) -> str:
    """A key's member of the set: the legacy reference's hash, the same whichever side took it."""
    return reference_for_key(idempotency_key).removeprefix("key-")


def keys_recently_ordered(*, product_id: int) -> list[str]:
    """The legacy references of the keys the product's hot orders were taken with, and of the
    monolith's buy-now orders (any product: a key is one order, whatever it bought), in the
    last ORDERS_KNOWN_KEYS_HOURS: the replays a sold-out sale must still answer."""
    since = timezone.now() - timedelta(hours=settings.ORDERS_KNOWN_KEYS_HOURS)
    hot = HotOrder.objects.filter(product_id=product_id, created_at__gte=since)
    keys = hot.values_list("idempotency_key", flat=True)
    return [reference_for_key(key) for key in keys.iterator()] + _monolith_keys(since)


def _monolith_keys(since) -> list[str]:
    """The keys the monolith's buy-now answered for good since `since`: an order placed, or a
    card declined (its 402 stands on either side of the edge, orders.acceptance)."""
    placed = PlacedOrder.objects.filter(reference__startswith="key-", placed_at__gte=since)
    declined = BuyNowRefusal.objects.filter(reference__startswith="key-", refused_at__gte=since)
    return list(placed.values_list("reference", flat=True)) + list(declined.values_list("reference", flat=True))


def known_keys_arm(*, allocation_id: int, product_id: int) -> bool:
    """Arms the sale's known keys before the sale accepts orders. False (and no set) where the
    cache is not Redis or Redis failed: sold-out answers then look keys up in the database."""
    client = redis_client()
    if client is None:
        return False
    name = cache.make_key(known_keys_key(allocation_id))
    started = timezone.now()
    members = [KNOWN_KEYS_ARMED, *(r.removeprefix("key-") for r in keys_recently_ordered(product_id=product_id))]
    try:
        server = client.info("server").get("run_id", "")  # none reported: never trusted (orders.gate)
        with client.pipeline(transaction=True) as pipe:
            pipe.delete(name)
            for start in range(0, len(members), 10_000):
                pipe.sadd(name, *members[start : start + 10_000])
            pipe.set(cache.make_key(known_keys_epoch_key(allocation_id)), f"{server} {uuid.uuid4().hex}")
            pipe.execute()
    except RedisError:
        logger.warning("could not arm the known keys of allocation %s", allocation_id, exc_info=True)
        known_keys_forget(allocation_id=allocation_id)
        return False
    transaction.on_commit(lambda: _arming_catch_up(allocation_id, since=started - ARMING_CATCH_UP))
    return True


def _arming_catch_up(allocation_id: int, *, since) -> None:
    """Once the sale's opening is committed: the monolith's receipts committed since the arming
    read the database. Each receipt committed after the opening adds its own key (it sees the
    sale open); one committed before it, while the arming ran, is found here."""
    client = redis_client()
    late = [r.removeprefix("key-") for r in _monolith_keys(since)]
    if client is None or not late:
        return
    try:
        _members_add(client, [cache.make_key(known_keys_key(allocation_id))], late)
    except RedisError:
        logger.warning("could not complete the known keys of allocation %s", allocation_id, exc_info=True)
        known_keys_forget(allocation_id=allocation_id)


def known_keys_forget(*, allocation_id: int) -> None:
    client = redis_client()
    if client is None:
        return
    try:
        client.delete(*(cache.make_key(k(allocation_id)) for k in (known_keys_key, known_keys_epoch_key)))
    except RedisError:
        logger.warning("could not drop the known keys of allocation %s", allocation_id, exc_info=True)


# Adds ARGV[2..] to each set of KEYS that is armed (holds the mark ARGV[1]); a set not armed
# (a sale being closed, a set Redis lost) is left alone, so no set is made without its mark.
MEMBERS_ADD_LUA = """
for i = 1, #KEYS do
  if redis.call('SISMEMBER', KEYS[i], ARGV[1]) == 1 then
    for j = 2, #ARGV do
      redis.call('SADD', KEYS[i], ARGV[j])
    end
  end
end
return 0
"""


def _members_add(client, names: list[str], members: list[str]) -> None:
    redis_script(client, MEMBERS_ADD_LUA)(keys=names, args=[KNOWN_KEYS_ARMED, *members], client=client)


def monolith_key_known(*, reference: str) -> None:
    """Adds a key the monolith placed an order with (or declined a card for) to every open
    sale's known keys: run as its receipt (or refusal) is written and again once it is
    committed (orders.signals). If Redis fails here, the sets it may have missed are dropped,
    so that their sold-out answers look keys up in the database."""
    client = redis_client()
    if client is None or not reference.startswith("key-"):
        return
    open_sales = list(SaleAllocation.objects.filter(state=SaleState.OPEN).values_list("pk", flat=True))
    if not open_sales:
        return
    try:
        names = [cache.make_key(known_keys_key(pk)) for pk in open_sales]
        _members_add(client, names, [reference.removeprefix("key-")])
    except RedisError:
        logger.warning("could not add the monolith's key %s to the open sales' known keys", reference, exc_info=True)
        for pk in open_sales:
            known_keys_forget(allocation_id=pk)
