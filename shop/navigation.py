"""The categories every page's header and footer list, kept in the cache: the sale page shows
them too, and it must stay cheap while the whole internet loads it."""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from shop import selectors
from shop.models import Category, Product

logger = logging.getLogger(__name__)

NAV_CACHE_KEY = "shop:nav-categories"
# A change is dropped from the cache at once (below); the lifetime only bounds a change made
# where the receivers did not run (a raw UPDATE, another codebase).
NAV_TTL = 300


def nav_categories() -> list[Category]:
    try:
        categories = cache.get(NAV_CACHE_KEY)
    except Exception:  # a cache that is away must not take the pages with it
        logger.warning("could not read the navigation from the cache", exc_info=True)
        return list(selectors.category_list_for_nav())
    if categories is None:
        categories = list(selectors.category_list_for_nav())
        try:
            cache.set(NAV_CACHE_KEY, categories, NAV_TTL)
        except Exception:
            logger.warning("could not cache the navigation", exc_info=True)
    return categories


@receiver(post_save, sender=Category, dispatch_uid="shop.navigation.category_saved")
@receiver(post_delete, sender=Category, dispatch_uid="shop.navigation.category_deleted")
@receiver(post_save, sender=Product, dispatch_uid="shop.navigation.product_saved")
@receiver(post_delete, sender=Product, dispatch_uid="shop.navigation.product_deleted")
def nav_forget(sender, **kwargs) -> None:
    def forget():
        try:
            cache.delete(NAV_CACHE_KEY)
        except Exception:
            logger.warning("could not drop the cached navigation", exc_info=True)

    transaction.on_commit(forget)
