"""Keeps the hot path's cached product fresh when a merchant changes the product or its sale,
and the open sales' known keys complete when the monolith places an order with a key (or
declines its card)."""

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from orders.known_keys import monolith_key_known
from orders.models import HotOrder, OrderStatus, SaleAllocation, SaleState
from orders.selectors import remaining_cache_key
from shop.catalogue_version import catalogue_changed
from shop.models import BuyNowRefusal, PlacedOrder, Product
from shop.product_address import ADDRESS, OFF_SALE, PRICE, product_address_in_use

# Products replace the catalogue's cache version themselves (shop.catalogue_version), bulk
# updates included; so do bulk updates of allocations (their queryset).


@receiver(post_save, sender=SaleAllocation)
@receiver(post_delete, sender=SaleAllocation)
def allocation_changed(sender, instance: SaleAllocation, **kwargs) -> None:
    catalogue_changed()
    allocation_id = instance.pk
    # After commit: dropped earlier, a concurrent reader could cache the old figure again.
    transaction.on_commit(lambda: cache.delete(remaining_cache_key(allocation_id)))


@receiver(post_save, sender=PlacedOrder)
@receiver(post_save, sender=BuyNowRefusal)
def placed_order_recorded(sender, instance: PlacedOrder | BuyNowRefusal, created: bool, **kwargs) -> None:
    if created:
        reference = instance.reference
        # Before the commit, so that no replay finds the receipt committed and the key unknown (a
        # key known without its order only sends the answer to the database); after it again, for
        # a sale whose opening committed meanwhile (orders.known_keys).
        monolith_key_known(reference=reference)
        transaction.on_commit(lambda: monolith_key_known(reference=reference))


# Why a product must stay as it is, by what keeps it and the change asked for.
_KEPT_BECAUSE = {
    ("open", ADDRESS): "{title}'s sale is open: the sale's route and its buyers' order links use this address. "
    "Change it once the sale is closed and its orders are settled.",
    ("open", OFF_SALE): "{title}'s sale is open: close the sale first, and take the product off sale once its "
    "orders are settled (the order backend places them only while it is on sale).",
    ("open", PRICE): "{title}'s sale is open: its page shows buyers this price, and a 202 charges it. "
    "Change it once the sale is closed.",
    ("placing", ADDRESS): "{title} has orders being placed: their buyers' order links use this address. "
    "Change it once they are settled.",
    ("placing", OFF_SALE): "{title} has orders being placed, which the order backend places only while it is on "
    "sale. Take it off sale once they are settled.",
}


@receiver(product_address_in_use)
def sale_address_in_use(sender, *, product_ids: list[int], change: str = ADDRESS, **kwargs) -> str | None:
    """An open sale routes the product's address to the hot path, and an order being placed
    (a closing sale's included) is polled at a status URL under it and placed by the order
    backend only while the product is on sale: either way the product must stay as it is. An
    open sale's page shows its price, which the buyer's 202 charges."""
    keepers = (
        ("open", SaleAllocation.objects.filter(product_id__in=product_ids, state=SaleState.OPEN)),
        ("placing", HotOrder.objects.filter(product_id__in=product_ids, status=OrderStatus.PROCESSING)),
    )
    for kept_by, rows in keepers:
        if (kept_by, change) not in _KEPT_BECAUSE:
            continue  # an order being placed keeps the price it was accepted at
        product_id = rows.values_list("product_id", flat=True).first()
        if product_id is not None:
            title = Product.objects.filter(pk=product_id).values_list("title", flat=True).first()
            return _KEPT_BECAUSE[kept_by, change].format(title=title)
    return None
