"""A product's address, /shop/<category>/<slug>/, as other parts of the shop rely on it: an
open sale routes it to the hot path, and its orders' status URLs are under it. The admin
asks before a product's slug or category, or a category's slug, changes; the apps that
rely on an address answer why it must stay (this app does not import them)."""

from __future__ import annotations

from collections.abc import Iterable

from django.dispatch import Signal

# Sent with `product_ids`; a receiver answers the reason the address must stay, or None.
product_address_in_use = Signal()


def product_address_refusal(*, product_ids: Iterable[int]) -> str | None:
    """Why these products' addresses may not change now, or None."""
    ids = list(product_ids)
    if not ids:
        return None
    for _receiver, reason in product_address_in_use.send(sender=None, product_ids=ids):
        if reason:
            return reason
    return None
