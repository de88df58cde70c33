"""The stock stamp: a token in the cache that moves whenever the units a shopper may buy may
have changed, so that a page can keep the stock it read until the stamp moves.

It moves at the commit of every STOCK event that changes on hand less held
(`shop.stock.stock_changed_append`, whoever writes it), and after each batch of the inventory
view that changed it (the view's figures are what the pages show). An order drawn from a
sale's hold lowers on hand and held alike, and moves nothing. Like the catalogue's version
it is a random token, not a counter: a stamp evicted from the cache comes back as a new one,
never as one that old copies were kept under."""

from __future__ import annotations

import logging
import secrets

from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)

STAMP_KEY = "readmodels:stock:stamp"


def stock_stamp() -> str | None:
    """The current stamp (made on first use); None when the cache cannot be read, and then
    nothing may be kept."""
    try:
        stamp = cache.get(STAMP_KEY)
        if stamp is None:
            cache.add(STAMP_KEY, secrets.token_hex(8), None)
            stamp = cache.get(STAMP_KEY)
    except Exception:
        logger.warning("no stock stamp: stock is read afresh", exc_info=True)
        return None
    return stamp


def _stamp_move() -> None:
    try:
        cache.set(STAMP_KEY, secrets.token_hex(8), None)
    except Exception:  # committed already; what pages keep expires on its own
        logger.warning("could not move the stock stamp", exc_info=True)


def moves_available(data: dict) -> bool:
    """Whether a logged change of stock (its `delta` of on hand and `held_delta` of held) moves
    what a shopper may buy, on hand less held, which is all the pages show. An order drawn
    from a sale's hold takes as much from both: during a sale's drain the pages keep their
    stock, and read the database again only when some other sale or restock moves it."""
    try:
        return int(data.get("delta") or 0) != int(data.get("held_delta") or 0)
    except (TypeError, ValueError):
        return True  # figures not as logged: the pages read again


def stock_stamp_move() -> None:
    """Moves the stamp once the caller's transaction commits (earlier, a page could read the
    old figures again and keep them under the new stamp)."""
    transaction.on_commit(_stamp_move)
