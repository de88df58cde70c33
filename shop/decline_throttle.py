"""Card testing: a stranger with a list of stolen card numbers tries them one by one at the
checkout, the buy-now API or the hot path, reading which are good from what is declined.
Declined cards are counted per mailbox (`+tags` and case folded) and per client address (an
IPv6 address by its /64), the same counters for every channel; once either reaches its limit in
a window (SHOP_DECLINES_PER_EMAIL, SHOP_DECLINES_PER_IP; 0: none), every next try from there is
refused with 429 and `Retry-After` before its card reaches the order backend. A buyer who
mistypes a card once or twice is not affected; nor is anyone whose card goes through.

The hot path answers before its card is sent: its gate refuses an address or mailbox at its
limit (`decline_counters`, in the gate's one Redis round trip; `declines_over` elsewhere), and
the worker counts a card the order backend declined (`decline_count`). The orders it accepted
before their declines came back are bounded by the hot path's own throttle per address.

A try is counted as out before its card is sent, and a try is refused while its address's or
mailbox's declines and tries out together pass the limit, so that tries sent at once cannot all
read a count under it. That refusal says what it is (too many payments at once) and asks to come
back in seconds, not minutes: a carrier's NAT puts many buyers behind one address, and their
checkouts at once while the order backend is slow are not declined cards. A try whose card is
declined counts as a decline once its answer is in. Only a try that sends a card counts: a
replay answered from what a key already got sends none.
With the cache away the tries go on uncounted: the checkout does not depend on the cache."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from django.conf import settings
from django.core.cache import cache

from shop.order_input import client_network, mailbox_key
from shop.window_counts import digest, window_count, window_now

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 900
DETAIL = "Too many cards were declined: please wait a few minutes before you try again."
TRIES_OUT_DETAIL = "Too many payments from here are being checked at once: please try again in a few seconds."
TRIES_OUT_RETRY_SECONDS = 3


class DeclinesThrottled(Exception):
    def __init__(self, *, retry_after: int, detail: str = DETAIL):
        super().__init__(detail)
        self.retry_after = retry_after


class DeclineTry:
    """One try's place among the tries out while its card is out; `declined()` counts it as a
    decline once the block is done."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        self.kept = False

    def declined(self) -> None:
        self.kept = True


def _scopes(*, address: str | None, email: str) -> dict[str, int]:
    """Each counted scope (this mailbox, this address), with its limit."""
    scopes = {}
    if email and settings.SHOP_DECLINES_PER_EMAIL > 0:
        scopes[f"shop:declines:mailbox:{digest(mailbox_key(email))}"] = settings.SHOP_DECLINES_PER_EMAIL
    if address and settings.SHOP_DECLINES_PER_IP > 0:
        scopes[f"shop:declines:address:{digest(client_network(address))}"] = settings.SHOP_DECLINES_PER_IP
    return scopes


def _limits(*, address: str | None, email: str, bucket: int) -> dict[str, int]:
    """Each declines counter's key in the window `bucket`, with its limit."""
    return {f"{scope}:{bucket}": limit for scope, limit in _scopes(address=address, email=email).items()}


def decline_counters(*, address: str | None, email: str) -> tuple[list[tuple[str, int]], int]:
    """This address's and mailbox's counters in the current window, each with its limit (a
    try is refused once one has as many as its limit), and the seconds until the window turns."""
    bucket, wait = window_now(WINDOW_SECONDS)
    return list(_limits(address=address, email=email, bucket=bucket).items()), wait


def declines_over(*, address: str | None, email: str) -> int | None:
    """The seconds to wait when this address or mailbox has had as many cards declined as its
    limit in this window, else None. Through Django's cache API; raises when the cache does."""
    counters, wait = decline_counters(address=address, email=email)
    if not counters:
        return None
    counts = cache.get_many([key for key, _ in counters])
    return wait if any((counts.get(key) or 0) >= limit for key, limit in counters) else None


def decline_count(*, address: str | None, email: str) -> None:
    """Counts one card the order backend declined for an order of this address and mailbox,
    once the order's answer was given (the hot path's worker); a cache that is away loses it."""
    bucket, _ = window_now(WINDOW_SECONDS)
    try:
        for key in _limits(address=address, email=email, bucket=bucket):
            window_count(key, WINDOW_SECONDS)
    except Exception:
        logger.warning("declined card not counted (the cache is away)", exc_info=True)


def _take_back(keys: list[str]) -> None:
    for key in keys:
        with contextlib.suppress(ValueError):  # expired meanwhile: nothing of it to take back
            cache.decr(key)


def _tries_out_seconds() -> int:
    """How long a try stays counted as out at most: longer than a card's call can take (three
    of the legacy API's timeouts). A try that never says it is done (its process killed, the
    cache away when it ended) is forgotten within twice that, not at the window's turn: a
    counter only the try's end gives back kept its mailbox or address refused for up to 15
    minutes, with no card out and none declined."""
    return max(30, int(3 * settings.LEGACY_API_TIMEOUT))


def _tries_out_keys(scope: str) -> tuple[str, str]:
    """The counters of tries out of `scope`: the current short window's, which a try adds
    itself to, and the one before, still read."""
    seconds = _tries_out_seconds()
    now = int(time.time() // seconds)
    return f"{scope}:out:{now}", f"{scope}:out:{now - 1}"


@contextlib.contextmanager
def decline_try(*, address: str | None, email: str) -> Iterator[DeclineTry]:
    """Around the sending of one card: DeclinesThrottled (nothing counted) when this mailbox or
    address has had as many cards declined as its limit (wait for the window), or when its
    declines and its tries out together pass it (wait seconds); the try counts as a decline
    only if the block calls `declined()`."""
    bucket, wait = window_now(WINDOW_SECONDS)
    scopes = _scopes(address=address, email=email)
    counted: list[str] = []
    try:
        out = {}
        for scope in scopes:
            current, before = _tries_out_keys(scope)
            out[scope] = window_count(current, 2 * _tries_out_seconds()) + (cache.get(before) or 0)
            counted.append(current)
        declines = cache.get_many([f"{scope}:{bucket}" for scope in scopes])
    except Exception:
        logger.warning("card-testing counts not kept (the cache is away): the try goes on", exc_info=True)
        scopes, counted = {}, []
    refused = None
    for scope, limit in scopes.items():
        declined = declines.get(f"{scope}:{bucket}") or 0
        if declined >= limit:
            refused = DeclinesThrottled(retry_after=wait)
            break
        if declined + out[scope] > limit:
            refused = DeclinesThrottled(retry_after=TRIES_OUT_RETRY_SECONDS, detail=TRIES_OUT_DETAIL)
    if refused is not None:
        _take_back(counted)
        raise refused
    attempt = DeclineTry([f"{scope}:{bucket}" for scope in scopes])
    try:
        yield attempt
    finally:
        try:
            if attempt.kept:
                for key in attempt.keys:
                    window_count(key, WINDOW_SECONDS)
            _take_back(counted)
        except Exception:
            logger.warning("card-testing counts not kept (the cache is away)", exc_info=True)
