"""The log's consumers in each Celery worker: a `config.worker_loop.WorkerLoop` that passes
over every consumer again at once while one has a backlog (it took a whole batch), else after
EVENT_CONSUMERS_LOOP_SECONDS. Beat's pass, a task, waits in the same queue as the orders:
during a stampede it would wait behind them, and the read models with it. 0 turns the loop
off (beat's pass alone)."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

from config.worker_loop import WorkerLoop, worker_loop_register
from events.consumers import consumer_names, consumer_run, consumers_read

logger = logging.getLogger(__name__)


def consumers_pass() -> int:
    """One batch for each registered consumer; a consumer that is busy elsewhere is skipped,
    and one that fails to load or run does not hold the others up. Returns the most events
    one consumer processed (a whole batch: it has more waiting)."""
    processed = 0
    names = consumer_names()
    reads, read_at = _shared_read(names), time.monotonic()
    for at, name in enumerate(names):
        if at and time.monotonic() - read_at > settings.EVENT_CONSUMERS_LOOP_SECONDS:
            # The consumers before took longer than a loop's wait: what they did not see is
            # read for the rest now, or the last one would lag by the whole pass.
            reads, read_at = _shared_read(names[at:]), time.monotonic()
        read = reads.get(name)
        if read is not None and not read[1]:
            continue  # nothing new for it: no query, no claim
        started = time.thread_time()
        try:
            result = consumer_run(consumer=name, read=read)
        except Exception:
            logger.exception("events consumer %s failed to run", name)
            continue
        finally:
            _cpu_add(name, time.thread_time() - started)
        processed = max(processed, result.processed + result.dead_lettered)
        if result.processed or result.dead_lettered or result.failed:
            logger.info("%s", result)
    return processed


def _shared_read(names: list[str]) -> dict:
    """`consumers_read` for these consumers, its CPU a share each; {} when it fails (each
    consumer then looks for itself, and says what failed)."""
    started = time.thread_time()
    try:
        reads = consumers_read(names) or {}
    except Exception:
        logger.warning("events consumers' shared read failed", exc_info=True)
        reads = {}
    for name in names:
        _cpu_add(name, (time.thread_time() - started) / len(names))
    return reads


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


class ConsumersLoop(WorkerLoop):
    def step(self) -> bool:
        # Again at once only while a consumer has a backlog (it took a whole batch): a pass
        # costs each consumer its claim, its read and its checkpoint, so events that trickle
        # in (a drain's few a second) are taken a batch an interval.
        return consumers_pass() >= settings.EVENT_CONSUMER_BATCH


def _loop() -> ConsumersLoop | None:
    interval = settings.EVENT_CONSUMERS_LOOP_SECONDS
    if interval <= 0 or not settings.EVENT_CONSUMERS:
        return None
    return ConsumersLoop(interval, name="events-consumers", stop_timeout=10.0)


worker_loop_register(_loop)
