"""What the throttles' counters are named by (shop.window_counts.digest): a keyed hash of an
address, a mailbox or an order number, never one anyone could make by hashing candidates."""

from __future__ import annotations

import hashlib

from orders.throttle import throttle_counters
from shop.lookup_throttle import _number_key
from shop.window_counts import digest


def plain(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def test_a_counter_names_a_client_or_an_order_by_a_hash_only_the_shop_can_make(settings):
    counters = [key for key, _limit in throttle_counters(client_ip="203.0.113.9", email="ann+x@example.com", now=0)]
    number = _number_key("L00000042", 0)

    # Each IPv4 address, each sequential order number, hashed plainly, is found in seconds.
    for value in ("203.0.113.9", "ann@example.com", "L00000042"):
        assert not any(plain(value) in key for key in [*counters, number])
    assert [digest("203.0.113.9") in counters[0], digest("ann@example.com") in counters[1]] == [True, True]
    shops = digest("203.0.113.9")
    settings.SECRET_KEY = "another shop's secret key, as long as a real one should be"
    assert digest("203.0.113.9") != shops
