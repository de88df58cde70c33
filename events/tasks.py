"""Celery tasks of the log: the consumers' passes (each worker also runs them in a loop of its
own, events.runner; beat's pass is the net), snapshots and pruning."""

from __future__ import annotations

import logging

from celery import shared_task

from events.runner import consumers_pass
from events.services import events_prune as prune
from events.snapshots import snapshot_take, view_names

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def consumers_run() -> None:
    """Beat's pass over the consumers: the net under the workers' own loop (events.runner)."""
    consumers_pass()


@shared_task(ignore_result=True)
def events_prune() -> None:
    deleted = prune()
    if deleted:
        logger.info("pruned %d events", deleted)


@shared_task(ignore_result=True)
def views_snapshot() -> None:
    """A snapshot of every read model: rebuilds start there, and pruning may pass it."""
    for name in view_names():
        try:
            snapshot_take(view=name)
        except Exception:
            logger.exception("snapshot of view %s failed", name)
