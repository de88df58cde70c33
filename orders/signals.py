"""Keeps the hot path's cached product fresh when a merchant changes the product or its sale."""

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from orders.models import SaleAllocation
from orders.selectors import product_cache_key, product_memo_forget, remaining_cache_key
from shop.models import Product


@receiver(post_save, sender=Product)
@receiver(post_delete, sender=Product)
def product_changed(sender, instance: Product, **kwargs) -> None:
    # After commit: dropped earlier, a concurrent reader could cache the old row again.
    slug = instance.slug

    def forget():
        cache.delete(product_cache_key(slug))
        product_memo_forget(slug)

    transaction.on_commit(forget)


@receiver(post_save, sender=SaleAllocation)
@receiver(post_delete, sender=SaleAllocation)
def allocation_changed(sender, instance: SaleAllocation, **kwargs) -> None:
    slug = Product.objects.filter(pk=instance.product_id).values_list("slug", flat=True).first()
    allocation_id = instance.pk

    def forget():
        if slug:
            cache.delete(product_cache_key(slug))
            product_memo_forget(slug)
        cache.delete(remaining_cache_key(allocation_id))

    transaction.on_commit(forget)
