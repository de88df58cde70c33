"""The catalogue's cache version: caches built from products or sale allocations are filed
under it, and every write to them (saves, deletes and bulk updates alike) replaces it.

`QuerySet.update()` sends no signal, so a merchant's bulk action once left the hot path
selling a product taken off sale; a version replaced by the queryset itself cannot be
forgotten by the next bulk write. The version is a random token, not a counter: a version key
evicted from the cache comes back as a new token, never as one that old entries carry."""

from __future__ import annotations

import logging
import secrets

from django.core.cache import cache
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save

logger = logging.getLogger(__name__)

VERSION_KEY = "shop:catalogue:version"
# Versions this process replaced: lets a process's own copies go at once, without asking Redis.
_replaced_here = 0
# Changes this process made, counted as they are made (before their commit): a copy filed
# under this count too is never one this process made before its own change.
_changed_here = 0


def catalogue_version() -> str:
    """The current version (a short token); made on first use."""
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, secrets.token_hex(8), None)
        version = cache.get(VERSION_KEY)
    return version


def replaced_here() -> int:
    """How many times this process replaced the version: a copy kept in memory is stale when
    this moved since it was made."""
    return _replaced_here


def changed_here() -> int:
    """How many catalogue changes this process has made so far, committed or not."""
    return _changed_here


def _version_replace() -> None:
    global _replaced_here
    _replaced_here += 1
    try:
        cache.set(VERSION_KEY, secrets.token_hex(8), None)
    except Exception:  # committed already; acceptance re-checks the product in the database
        logger.warning("could not replace the catalogue's cache version", exc_info=True)


def catalogue_changed() -> None:
    """Files every cache of the catalogue under a new version once the write commits (earlier,
    a reader could cache the old rows again under the new version)."""
    global _changed_here
    _changed_here += 1
    transaction.on_commit(_version_replace)


class VersionedQuerySet(models.QuerySet):
    """A queryset whose bulk updates replace the catalogue's version. Updates of the counters
    alone (`counter_fields`: stock, reservations) leave it, as no cache holds them for long,
    and they change with every order."""

    counter_fields: frozenset[str] = frozenset({"updated_at"})

    def update(self, **kwargs):
        count = super().update(**kwargs)
        if count and set(kwargs) - self.counter_fields:
            catalogue_changed()
        return count

    update.alters_data = True


def _changed(sender, **kwargs) -> None:
    catalogue_changed()


def connect(*models_: type[models.Model]) -> None:
    """Replaces the version after every save and delete of these models."""
    for model in models_:
        post_save.connect(_changed, sender=model, dispatch_uid=f"catalogue_version.saved.{model._meta.label}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"catalogue_version.deleted.{model._meta.label}")


__all__ = ["VERSION_KEY", "VersionedQuerySet", "catalogue_changed", "catalogue_version", "connect"]
