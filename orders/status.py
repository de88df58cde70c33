"""The buyer's status read model, beside the writes that keep it: its cache key and entry, and
the refresh after every committed change (`selectors.order_status_get` reads it)."""

from __future__ import annotations

import logging
import time

from django.core.cache import cache
from django.db import transaction

from orders.models import HotOrder, OrderStage

logger = logging.getLogger(__name__)

STATUS_TTL = 7 * 24 * 3600
STATUS_REFRESH_SECONDS = 10


def status_cache_key(number: str) -> str:
    return f"orders:status:{number}"


def status_entry(order: HotOrder) -> dict:
    """The read-model entry of an order: what the status URL shows, plus what checks access."""
    return {
        "number": order.number,
        "token": order.token,
        "product_id": order.product_id,
        "status": order.status,
        "stage": order.stage,
        "detail": status_detail(order),
        "cached_at": time.time(),
    }


def status_detail(order: HotOrder) -> str:
    stage = order.stage
    if stage == OrderStage.QUEUED:
        return "Your order is in the queue; your items are reserved."
    if stage == OrderStage.VALIDATING:
        return "We are placing your order with our warehouse."
    if stage == OrderStage.DEAD_LETTERED:
        return "This is taking longer than usual. Your items stay reserved; we will email you."
    if stage == OrderStage.PAYMENT_AUTHORISED:
        return "Payment authorised."
    if stage == OrderStage.SENT_TO_FULFILMENT:
        # The buyer knows the order by its number alone (the warehouse's is the merchant's business).
        return "Thank you! Your order is confirmed and on its way to our warehouse."
    if stage == OrderStage.CARD_DECLINED:
        return "Your card was declined; nothing was charged and the items were released."
    if stage == OrderStage.SOLD_OUT:
        return "Sorry, this product sold out before your order could be placed; nothing was charged."
    if stage == OrderStage.EXPIRED:
        return "Your reservation expired before the order could be placed; nothing was charged."
    if stage == OrderStage.CANCELLED:
        return "We could not place your order and have cancelled it; nothing was charged and the items were released."
    return ""


def status_store_quietly(order: HotOrder) -> None:
    """Writes the order's entry now; a cache that fails refills from the database."""
    cache_set_quietly(status_cache_key(order.number), status_entry(order), STATUS_TTL)


def status_refresh_on_commit(order: HotOrder) -> None:
    """Refreshes the buyer's read model once the change is committed."""
    entry = status_entry(order)

    def refresh():
        try:
            cache.set(status_cache_key(entry["number"]), entry, timeout=STATUS_TTL)
        except Exception:  # the change is committed; the read model refills from the database on a miss
            logger.warning("could not refresh the status of order %s", entry["number"], exc_info=True)
            cache_delete_quietly(status_cache_key(entry["number"]))

    transaction.on_commit(refresh)


def cache_set_quietly(key: str, value, timeout: int) -> None:
    try:
        cache.set(key, value, timeout)
    except Exception:
        logger.warning("could not set %s in the cache", key, exc_info=True)


def cache_delete_quietly(key: str) -> None:
    try:
        cache.delete(key)
    except Exception:
        logger.warning("could not drop %s from the cache", key, exc_info=True)
