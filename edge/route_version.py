"""The routes' version: the edge middleware compiles the enabled routes once per version, and
every change of a route or an origin (saves, deletes and bulk updates alike) replaces it once
committed, for every process at once.

A random token kept in the cache, as the catalogue's version is: a version evicted from the
cache comes back as a new token, never as one an old compilation carries. Changes are also
counted in this process as they are made, so a process's own change counts before its commit."""

from __future__ import annotations

import logging
import secrets

from django.core.cache import cache
from django.db import models, transaction

logger = logging.getLogger(__name__)

VERSION_KEY = "edge:routes:version"
_changed_here = 0


def routes_version() -> tuple[str, int]:
    """The current version and this process's count of changes; raises when the cache is away."""
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, secrets.token_hex(8), None)
        version = cache.get(VERSION_KEY)
    return version, _changed_here


def _version_replace() -> None:
    try:
        cache.set(VERSION_KEY, secrets.token_hex(8), None)
    except Exception:  # committed already; the compiled routes of other processes live on
        logger.warning("could not replace the routes' version", exc_info=True)


def routes_changed() -> None:
    """A new version once the change commits (earlier, another process could compile the old
    rows again under the new version)."""
    global _changed_here
    _changed_here += 1
    transaction.on_commit(_version_replace)


class RouteQuerySet(models.QuerySet):
    """Bulk updates and bulk creates replace the routes' version too (neither sends a signal)."""

    def update(self, **kwargs):
        count = super().update(**kwargs)
        if count:
            routes_changed()
        return count

    update.alters_data = True

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            routes_changed()
        return created

    bulk_create.alters_data = True


def _changed(sender, **kwargs) -> None:
    routes_changed()


def connect(*models_: type[models.Model]) -> None:
    """Replaces the version after every save and delete of these models."""
    from django.db.models.signals import post_delete, post_save

    for model in models_:
        post_save.connect(_changed, sender=model, dispatch_uid=f"edge.route_version.saved.{model._meta.label}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"edge.route_version.deleted.{model._meta.label}")
