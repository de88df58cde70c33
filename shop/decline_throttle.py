"""Card testing: a stranger with a list of stolen card numbers tries them one by one at the
checkout or the buy-now API, reading which are good from what is declined. Declined cards are
counted per mailbox (`+tags` and case folded) and per client address (an IPv6 address by its
/64); once either reaches its limit in a window (SHOP_DECLINES_PER_EMAIL, SHOP_DECLINES_PER_IP;
0: none), every next try from there is refused with 429 and `Retry-After` before its card
reaches the order backend. A buyer who mistypes a card once or twice is not affected; nor is
anyone whose card goes through.

A try is counted before its card is sent and taken back once it is not declined, so that tries
sent at once cannot all read a count under the limit (as the order lookup's throttle counts).
Only a try that sends a card counts: a replay answered from what a key already got sends none.
With the cache away the tries go on uncounted: the checkout does not depend on the cache."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from django.conf import settings
from django.core.cache import cache

from shop.order_input import client_network, mailbox_key
from shop.window_counts import digest, window_count, window_now

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 900
DETAIL = "Too many cards were declined: please wait a few minutes before you try again."


class DeclinesThrottled(Exception):
    def __init__(self, *, retry_after: int):
        super().__init__(DETAIL)
        self.retry_after = retry_after


class DeclineTry:
    """One try's place in the counts while its card is out; `declined()` keeps it there."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        self.kept = False

    def declined(self) -> None:
        self.kept = True


def _limits(*, address: str | None, email: str, bucket: int) -> dict[str, int]:
    """Each counter's key, with its limit."""
    limits = {}
    if email and settings.SHOP_DECLINES_PER_EMAIL > 0:
        limits[f"shop:declines:mailbox:{digest(mailbox_key(email))}:{bucket}"] = settings.SHOP_DECLINES_PER_EMAIL
    if address and settings.SHOP_DECLINES_PER_IP > 0:
        limits[f"shop:declines:address:{digest(client_network(address))}:{bucket}"] = settings.SHOP_DECLINES_PER_IP
    return limits


def _take_back(keys: list[str]) -> None:
    for key in keys:
        with contextlib.suppress(ValueError):  # the window turned: nothing of it to take back
            cache.decr(key)


@contextlib.contextmanager
def decline_try(*, address: str | None, email: str) -> Iterator[DeclineTry]:
    """Around the sending of one card: DeclinesThrottled (nothing counted) when this mailbox or
    address has had too many cards declined, or has as many tries out; the try stays counted
    only if the block calls `declined()`."""
    bucket, wait = window_now(WINDOW_SECONDS)
    limits = _limits(address=address, email=email, bucket=bucket)
    counted: list[str] = []
    try:
        over = False
        for key, limit in limits.items():
            count = window_count(key, WINDOW_SECONDS)
            counted.append(key)
            over = over or count > limit
    except Exception:
        logger.warning("card-testing counts not kept (the cache is away): the try goes on", exc_info=True)
        over, counted = False, []
    if over:
        _take_back(counted)
        raise DeclinesThrottled(retry_after=wait)
    attempt = DeclineTry(counted)
    try:
        yield attempt
    finally:
        if not attempt.kept:
            try:
                _take_back(counted)
            except Exception:
                logger.warning("card-testing count not taken back (the cache is away)", exc_info=True)
