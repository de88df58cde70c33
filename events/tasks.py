"""Celery tasks of the log: beat runs every consumer once every second or two, and prunes."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.core.cache import cache

from events.consumers import consumer_names, consumer_run
from events.services import events_prune as prune
from events.snapshots import snapshot_take, view_names

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def consumers_run() -> None:
    """One batch for each registered consumer; a consumer that is busy elsewhere is skipped,
    and one that fails to load or run does not hold the others up."""
    for name in consumer_names():
        started = time.process_time()
        try:
            result = consumer_run(consumer=name)
        except Exception:
            logger.exception("events consumer %s failed to run", name)
            continue
        finally:
            _cpu_add(name, time.process_time() - started)
        if result.processed or result.dead_lettered or result.failed:
            logger.info("%s", result)


def consumer_cpu_key(name: str) -> str:
    return f"events:consumer-cpu-us:{name}"


def _cpu_add(name: str, seconds: float) -> None:
    """What each consumer's runs cost this process in CPU, added up in the cache (microseconds),
    so a benchmark can tell what the read models cost."""
    key, micros = consumer_cpu_key(name), max(int(seconds * 1_000_000), 0)
    try:
        if not cache.add(key, micros, None):
            cache.incr(key, micros)
    except Exception:  # a figure for the benchmark: never worth failing the consumers for
        logger.debug("consumer CPU not counted", exc_info=True)


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
