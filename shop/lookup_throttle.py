"""The order lookup's throttles: per client address, and per order number across addresses.

A lookup answers whether a number, an email and a card's last digits belong together, so it
must not be a way to try them all: from one address (every try counts), nor from many
addresses aiming at one order (failed tries count, so a botnet cannot spread its guesses).
Counts live in the shared cache (shop.window_counts)."""

from __future__ import annotations

import contextlib

from django.core.cache import cache

from shop.order_input import client_network
from shop.window_counts import digest, window_count, window_now

ADDRESS_LIMIT = 10
ADDRESS_WINDOW_SECONDS = 600
NUMBER_LIMIT = 20
NUMBER_WINDOW_SECONDS = 3600


def _number_key(number: str, bucket: int) -> str:
    return f"shop:lookup:number:{digest(number.strip().upper())}:{bucket}"


def lookup_address_throttle(*, address: str) -> int | None:
    """Counts a lookup from this address (an IPv6 address by its /64, client_network); the
    seconds to wait when it is over the limit."""
    bucket, wait = window_now(ADDRESS_WINDOW_SECONDS)
    count = window_count(f"shop:lookup:{digest(client_network(address))}:{bucket}", ADDRESS_WINDOW_SECONDS)
    return wait if count > ADDRESS_LIMIT else None


def lookup_number_throttle(*, number: str) -> int | None:
    """Counts a try at this order number, whoever makes it; the seconds to wait when the
    number has had too many failed tries. An order known by two numbers (a sale order's T- and
    L-number) is counted by one (OrderFinder.own_number), so it has one budget. The try is
    counted before it is made, so parallel guesses cannot all slip under the limit;
    lookup_number_succeeded takes a success back."""
    bucket, wait = window_now(NUMBER_WINDOW_SECONDS)
    count = window_count(_number_key(number, bucket), NUMBER_WINDOW_SECONDS)
    return wait if count > NUMBER_LIMIT else None


def lookup_number_succeeded(*, number: str) -> None:
    bucket, _ = window_now(NUMBER_WINDOW_SECONDS)
    # The window may have turned meanwhile: then there is nothing of this one to take back.
    with contextlib.suppress(ValueError):
        cache.decr(_number_key(number, bucket))
