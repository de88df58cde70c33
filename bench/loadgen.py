"""An open-model load generator: requests leave at a fixed arrival rate, whatever the server does.

Each request has an intended send time (start + i / rate). Its latency is measured from that
time, not from when a free connection happened to pick it up, so a server that stalls is
charged for the whole stall (no coordinated omission). Threads only carry the requests; if
all of them are busy, the next request waits in the queue and that wait counts too.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import urllib3


@dataclass
class Sample:
    intended: float  # seconds since the run started
    latency_ms: float
    status: int  # 0 when the request failed at the transport level
    body: bytes = b""


@dataclass
class RunResult:
    name: str
    rate: float
    duration: float
    samples: list[Sample] = field(default_factory=list)
    generator_cpu_seconds: float = 0.0
    wall_seconds: float = 0.0

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for sample in self.samples:
            counts[sample.status] = counts.get(sample.status, 0) + 1
        return counts

    def percentile(self, q: float, *, ok_only: bool = False) -> float:
        values = sorted(s.latency_ms for s in self.samples if not ok_only or 200 <= s.status < 500)
        if not values:
            return float("nan")
        index = min(len(values) - 1, max(0, int(round(q / 100 * len(values) + 0.5)) - 1))
        return values[index]

    def error_rate(self) -> float:
        if not self.samples:
            return 0.0
        errors = sum(1 for s in self.samples if s.status == 0 or s.status >= 500)
        return errors / len(self.samples)

    def achieved_rps(self) -> float:
        return len(self.samples) / self.wall_seconds if self.wall_seconds else 0.0


Request = Callable[[urllib3.PoolManager, int], tuple[int, bytes]]


def open_loop(
    name: str,
    request: Request,
    *,
    rate: float,
    duration: float,
    threads: int = 64,
    keep_body: bool = False,
    stop: threading.Event | None = None,
    start_at: float | None = None,
) -> RunResult:
    """Sends `rate` requests a second for `duration` seconds; `request(pool, i)` sends the i-th.
    `start_at`, a `time.monotonic()` instant (one clock for every process on Linux), lets
    streams in several processes start together, once each is ready."""
    total = int(rate * duration)
    result = RunResult(name=name, rate=rate, duration=duration)
    jobs: queue.Queue[tuple[int, float] | None] = queue.Queue()
    lock = threading.Lock()
    stop = stop or threading.Event()
    start = max(start_at or 0.0, time.monotonic() + 0.2)

    def worker() -> None:
        pool = urllib3.PoolManager(maxsize=2, retries=False, timeout=urllib3.Timeout(connect=5, read=30))
        while True:
            job = jobs.get()
            if job is None:
                return
            index, intended = job
            try:
                status, body = request(pool, index)
            except Exception:  # any transport failure counts as a failed request
                status, body = 0, b""
            done = time.monotonic()
            sample = Sample(intended - start, (done - intended) * 1000, status, body if keep_body else b"")
            with lock:
                result.samples.append(sample)

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for index in range(total):
        intended = start + index / rate
        delay = intended - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        jobs.put((index, intended))
    for _ in workers:
        jobs.put(None)
    for thread in workers:
        thread.join(timeout=60)
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    result.wall_seconds = time.monotonic() - start
    result.generator_cpu_seconds = (cpu_after.ru_utime - cpu_before.ru_utime) + (
        cpu_after.ru_stime - cpu_before.ru_stime
    )
    return result


def _open_loop_child(connection, name: str, request: Request, kwargs: dict, nice: int = 0) -> None:
    if nice:
        os.nice(nice)
    try:
        connection.send(open_loop(name, request, **kwargs))
    finally:
        connection.close()


def open_loop_apart(name: str, request: Request, *, nice: int = 0, **kwargs) -> RunResult:
    """`open_loop` in a process of its own (a fresh interpreter, so `request` must pickle):
    streams that run at once do not share an interpreter lock, and each one's CPU is its own.
    `nice` lowers the process's priority."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_open_loop_child, args=(sender, name, request, kwargs, nice), daemon=True)
    process.start()
    sender.close()
    try:
        result = receiver.recv()
    except EOFError:
        raise RuntimeError(f"the load generator {name!r} died (exit code {process.exitcode})") from None
    finally:
        process.join(timeout=30)
    return result
