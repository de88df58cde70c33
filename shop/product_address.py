"""A product as other parts of the shop rely on it while it is sold elsewhere: an open sale
routes its address, /shop/<category>/<slug>/, to the hot path, its orders' status URLs are
under that address, and the order backend places those orders only while the product is on
sale; and the sale's page shows its buyers the price they will be charged. The admin asks
before a product's slug or category, or a category's slug, changes (ADDRESS), before a
product is taken off sale or deleted (OFF_SALE), and before its price changes (PRICE); the
apps that rely on it answer why it must stay (this app does not import them)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.dispatch import Signal

from shop.models import Product

ADDRESS = "address"
OFF_SALE = "off_sale"
PRICE = "price"

# Sent with `product_ids` and `change` (ADDRESS, OFF_SALE or PRICE); a receiver answers the reason
# the change must wait, or None.
product_address_in_use = Signal()


def product_address_refusal(*, product_ids: Iterable[int], change: str = ADDRESS) -> str | None:
    """Why these products' addresses (or, with OFF_SALE, their being on sale) may not change
    now, or None.

    The products' rows are locked first, for the caller's transaction (the admin's save runs
    in one): a sale being opened takes the same lock before it commits (orders.sales), so either
    it waits for this change and then sees it, or this asks once that sale is open."""
    ids = sorted(set(product_ids))
    if not ids:
        return None
    with transaction.atomic():
        list(Product.objects.select_for_update().filter(pk__in=ids).values_list("pk", flat=True))
        for _receiver, reason in product_address_in_use.send(sender=None, product_ids=ids, change=change):
            if reason:
                return reason
    return None
