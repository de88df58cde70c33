"""Card testing: a stranger with a list of stolen card numbers tries them one by one at the
checkout or the buy-now API, reading which are good from what is declined. Declined cards are
counted per mailbox (`+tags` and case folded) and per client address (an IPv6 address by its
/64); once either reaches its limit in a window (SHOP_DECLINES_PER_EMAIL, SHOP_DECLINES_PER_IP;
0: none), every next try from there is
refused with 429 and `Retry-After` before its card reaches the order backend. A buyer who
mistypes a card once or twice is not affected; nor is anyone whose card goes through."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

from shop.order_input import client_network, mailbox_key
from shop.window_counts import digest, window_count, window_now

WINDOW_SECONDS = 900
DETAIL = "Too many cards were declined: please wait a few minutes before you try again."


def _limits(*, address: str | None, email: str, bucket: int) -> dict[str, int]:
    """Each counter's key, with its limit."""
    limits = {}
    if email and settings.SHOP_DECLINES_PER_EMAIL > 0:
        limits[f"shop:declines:mailbox:{digest(mailbox_key(email))}:{bucket}"] = settings.SHOP_DECLINES_PER_EMAIL
    if address and settings.SHOP_DECLINES_PER_IP > 0:
        limits[f"shop:declines:address:{digest(client_network(address))}:{bucket}"] = settings.SHOP_DECLINES_PER_IP
    return limits


def declines_wait(*, address: str | None, email: str) -> int | None:
    """The seconds to wait when this mailbox or address has had too many cards declined."""
    bucket, wait = window_now(WINDOW_SECONDS)
    limits = _limits(address=address, email=email, bucket=bucket)
    counts = cache.get_many(list(limits)) if limits else {}
    return wait if any(count >= limits[key] for key, count in counts.items()) else None


def decline_count(*, address: str | None, email: str) -> None:
    """Counts a card declined for this mailbox and address."""
    bucket, _ = window_now(WINDOW_SECONDS)
    for key in _limits(address=address, email=email, bucket=bucket):
        window_count(key, WINDOW_SECONDS)
