"""The hot path's answers per second, for the live dashboard: accepted (with how long the
acceptance took, in a histogram), sold out and throttled, counted in the cache (Redis when
there is one) in keys that expire on their own.

An answer costs the buyer no round trip: it is counted in this process's memory, and a thread
of the process adds the counts to the cache every FLUSH_SECONDS in one pipeline (a process
that dies loses at most that much of a figure that is only ever shown). No database write."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from bisect import bisect_left
from collections import Counter

from django.core.cache import cache

from config.cache import redis_client
from config.fork_safe import fork_safe_lock

logger = logging.getLogger(__name__)

# Upper bounds of the latency histogram's buckets, in milliseconds (the last is open-ended).
BOUNDS_MS = (2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, math.inf)
OUTCOMES = {202: "accepted", 409: "sold_out", 429: "throttled"}
KEEP_SECONDS = 180


def _key(product: str, second: int, outcome: str) -> str:
    return f"readmodels:answers:{product}:{second}:{outcome}"


FLUSH_SECONDS = 0.5

_lock = fork_safe_lock()  # its flusher thread runs in processes that may fork
_pending: Counter = Counter()
_flusher: dict[str, object] = {"pid": None}


def answer_record(*, product: str, status: int, seconds: float, now: float | None = None) -> None:
    """Counts one answer of the hot path; an accepted one in its latency bucket."""
    outcome = OUTCOMES.get(status)
    if outcome is None:
        return
    if outcome == "accepted":
        outcome = f"accepted:{bisect_left(BOUNDS_MS, seconds * 1000)}"
    key = _key(product, int(now or time.time()), outcome)
    with _lock:
        _pending[key] += 1
    if _flusher["pid"] != os.getpid():  # the first answer of this process (or of a fork)
        _flusher_start()


def _flusher_start() -> None:
    with _lock:
        if _flusher["pid"] == os.getpid():
            return
        _flusher["pid"] = os.getpid()
    threading.Thread(target=_flush_forever, daemon=True, name="answers-flush").start()


def _flush_forever() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        answers_flush()


def answers_flush() -> None:
    """Adds this process's counted answers to the cache."""
    with _lock:
        taken = dict(_pending)
        _pending.clear()
    if not taken:
        return
    try:
        client = redis_client()
        if client is not None:
            with client.pipeline(transaction=False) as pipe:
                for key, count in taken.items():
                    name = cache.make_key(key)
                    pipe.incrby(name, count)
                    pipe.expire(name, KEEP_SECONDS)
                pipe.execute()
            return
        for key, count in taken.items():
            cache.add(key, 0, KEEP_SECONDS)
            cache.incr(key, count)
    except Exception:  # counting must never cost the buyer an answer
        logger.debug("answers not counted", exc_info=True)


def _quantile(counts: list[int], q: float) -> float | None:
    total = sum(counts)
    if not total:
        return None
    rank, seen = q * total, 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            bound = BOUNDS_MS[index]
            return bound if bound != math.inf else BOUNDS_MS[index - 1]
    return None


def answers_recent(*, products: list[str], seconds: int = 30, now: float | None = None) -> dict:
    """Per product, the answers of each of the last `seconds` whole seconds (oldest first), and
    p50 and p99 acceptance latency over them (bucket upper bounds, ms)."""
    answers_flush()  # this process's own, at once; the others' within FLUSH_SECONDS
    end = int(now or time.time())
    span = range(end - seconds, end)
    names = [f"accepted:{i}" for i in range(len(BOUNDS_MS))] + ["sold_out", "throttled"]
    keys = [_key(p, s, n) for p in products for s in span for n in names]
    try:
        found = cache.get_many(keys) if keys else {}
    except Exception:
        found = {}
    result = {}
    for product in products:
        series = {"seconds": list(span), "accepted": [], "sold_out": [], "throttled": []}
        buckets = [0] * len(BOUNDS_MS)
        for second in span:
            accepted = 0
            for index in range(len(BOUNDS_MS)):
                count = int(found.get(_key(product, second, f"accepted:{index}")) or 0)
                buckets[index] += count
                accepted += count
            series["accepted"].append(accepted)
            series["sold_out"].append(int(found.get(_key(product, second, "sold_out")) or 0))
            series["throttled"].append(int(found.get(_key(product, second, "throttled")) or 0))
        series["p50_ms"], series["p99_ms"] = _quantile(buckets, 0.5), _quantile(buckets, 0.99)
        result[product] = series
    return result
