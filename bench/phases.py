"""The stampede benchmark's phases (`python -m bench.stampede` runs them): its two
profiles, the warm-up, the legacy API's calibration, the stampede itself with what it samples
(the queue, the legacy API's orders in flight, each part's cores and waits for them), and the
figures of the drain those samples give."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import urllib3

from bench.books import ConsumerLag, legacy_reset, legacy_stats
from bench.dashboard import dashboard_screenshot
from bench.loadgen import RunResult, open_loop, open_loop_apart
from bench.sales import CEILING_PRODUCT, HOT_CATEGORY, HOT_PRODUCT
from bench.shoppers import CARD_OK, browse_request, buyer_request, checkout_request
from bench.stack import Stack


@dataclass(frozen=True)
class Profile:
    allocation: int
    buyer_rate: float  # buyers a second during the stampede
    stampede_seconds: float
    browse_rate: float  # shoppers' page views a second
    checkout_rate: float  # shoppers' ordinary checkouts a second, through the monolith
    idle_seconds: float
    wrk_seconds: int
    wrk_connections: tuple[int, ...]
    calibrate_seconds: float
    drain_timeout: float
    reps: int = 3  # repetitions of each speed figure (its median is reported, with the spread)
    pgbench_seconds: int = 5
    accept_rate: float = 100.0  # buyers a second for the acceptance latency, empty queue and backlog
    accept_seconds: float = 10.0  # 1,000 acceptances a measurement: its p99 is the 10th slowest
    backlog_orders: int = 100_000
    # Rounds of the stampede through the route, each with its own sale, idle browsing and
    # drain: the browsing p99s and the drain are the median of theirs (bench.rounds).
    stampede_rounds: int = 3
    # The merchant's dashboard pictured in a round of its own after those (bench.rounds).
    picture_round_apart: bool = True


# Buyers arrive at two to three times what the legacy API can place (it manages 21 to 27
# orders a second here, with its whole capacity) and well below what the hot path accepts
# (300 to 460 a second on 2 cores), so what is measured is the shop, not a queue at its door.
QUICK = Profile(
    80,
    60,
    6,
    8,
    1,
    4,
    1,  # wrk's runs: the quick run judges only the books, its speed figures are a smoke test
    (8, 32),
    3,
    60,
    reps=1,
    pgbench_seconds=2,
    accept_seconds=2,
    backlog_orders=5_000,
    stampede_rounds=1,
    picture_round_apart=False,
)
# The quick run judges only the books: it waits at most this long for a quiet machine before a
# phase (a full run waits up to 10 s before each wrk or pgbench run, 30 s before calibrating).
QUICK_QUIET_WAIT_SECONDS = 2.0
FULL = Profile(400, 60, 20, 12, 2, 20, 8, (4, 16, 64, 128), 8, 150)


# --- phases ------------------------------------------------------------------------------

# What the other shoppers look at, idle and during the stampede alike (the same pages, so the
# two p99s compare), and what the warm-up views first: a shop's pages have been seen before
# its sale starts.
BROWSE_PATHS = [
    "/shop/",
    "/shop/reels/",
    "/shop/reels/spinning-reel/",
    "/shop/hard-baits/",
    "/shop/hard-baits/square-bill-silent-crankbait/",
    # Not the other hot product's page: its route sends it to the hot path, behind the buyers.
    "/shop/rods/",
    "/shop/reels/baitcasting-reel/",
]

# Time for the stampede's load generators (a process each) to start before their streams do.
GENERATORS_START_SECONDS = 3.0


class Sampler(threading.Thread):
    """Samples the queue depth and the legacy API's orders in flight four times a second."""

    def __init__(self, stack: Stack):
        super().__init__(daemon=True)
        self.stack = stack
        self.stop = threading.Event()
        self.rows: list[tuple[float, int, int]] = []
        self.http = urllib3.PoolManager(retries=False, timeout=2.0)
        self.start_time = time.monotonic()

    def run(self) -> None:
        import redis

        broker = redis.Redis.from_url(self.stack.env["CELERY_BROKER_URL"])
        stats_url, headers = self.stack.url("legacy", "/legacy-api/stats"), self.stack.legacy_headers()
        while not self.stop.wait(0.25):
            try:
                depth = int(broker.llen("celery"))
            except Exception:
                depth = -1
            try:
                stats = json.loads(self.http.request("GET", stats_url, headers=headers).data)
                inflight = int(stats.get("inflight", 0))
            except Exception:
                inflight = -1
            self.rows.append((time.monotonic() - self.start_time, depth, inflight))


def warm_up(stack: Stack) -> None:
    """A few seconds of every kind of request, so that no measurement pays for the servers'
    first connections (database, Redis, upstream keep-alive) and cold code paths."""
    pages_warm(stack)
    edge = stack.url("edge", "")
    # Real orders, for the second hot product: every thread of the hot path opens its
    # connections; the workers place them before anything is measured.
    orders = buyer_request(edge, f"warm{int(time.time())}", product_path=f"/shop/rods/{CEILING_PRODUCT}/")
    open_loop("warm-up orders", orders, rate=20, duration=2, threads=8)
    # Orders at 20 a second come one at a time, and granian starts a request thread only when
    # the ones it has are busy: a burst of status lookups for orders that do not exist (each
    # one a read of the database, never cached) keeps every thread of every process busy at
    # once, so each opens its connection here and not in the first stampede.
    lookups = [f"/shop/rods/{CEILING_PRODUCT}/orders/T{990000000 + n}/{'x' * 43}" for n in range(64)]
    open_loop("warm-up lookups", browse_request(edge, lookups), rate=800, duration=1.5, threads=48)
    import redis

    broker = redis.Redis.from_url(stack.env["CELERY_BROKER_URL"])
    deadline = time.monotonic() + 20
    while broker.llen("celery") and time.monotonic() < deadline:
        time.sleep(0.2)


def pages_warm(stack: Stack) -> None:
    """The shoppers' pages viewed, through the edge and by every process of the monolith, as
    in a shop that has been open a while. Again before each later round of the stampede: its
    sale's closing and opening are writes to sales, which replace the catalogue's version
    (`shop.page_cache`), so every process renders its pages anew, and the round's idle window
    would otherwise time those first renders."""
    edge = stack.url("edge", "")
    paths = [*BROWSE_PATHS, f"/shop/{HOT_CATEGORY}/{HOT_PRODUCT}/"]
    open_loop("warm-up", browse_request(edge, paths), rate=40, duration=3, threads=16)
    # Every process of the monolith shows each page once, as in a shop that has been open a
    # while: nginx keeps its connections to the worker it reached first, and a process whose
    # first page views fell in the stampede rendered and kept its pages there. A connection
    # of its own, straight to gunicorn, reaches whichever worker accepts it first.
    headers = {"Connection": "close"}
    if stack.env.get("EDGE_ORIGIN_SECRET"):
        headers["X-Origin-Verify"] = stack.env["EDGE_ORIGIN_SECRET"]
    for path in BROWSE_PATHS:
        for _ in range(6 * stack.settings.gunicorn_workers):
            urllib3.request("GET", stack.url("monolith", path), headers=headers, retries=False, timeout=10.0)


def calibrate_legacy(stack: Stack, profile: Profile) -> float:
    """The most orders a second the legacy API completes, called with exactly its capacity."""
    capacity = stack.settings.legacy_capacity
    done = []
    # References of their own: one the legacy API has seen is answered with its order at once.
    run = uuid.uuid4().hex[:12]
    stop = time.monotonic() + profile.calibrate_seconds
    headers = stack.legacy_headers("storefront")

    def client(n: int) -> None:
        pool = urllib3.PoolManager(retries=False, timeout=30.0)
        i = 0
        while time.monotonic() < stop:
            i += 1
            body = {
                "reference": f"calibrate-{run}-{n}-{i}",
                "customer": {"name": "Calibration", "email": "calibrate@example.com"},
                "lines": [{"product": "spinning-reel", "quantity": 1}],
                "payment": {"card_number": CARD_OK},
            }
            response = pool.request(
                "POST",
                stack.url("legacy", "/legacy-api/orders"),
                body=json.dumps(body),
                headers=headers,
            )
            if response.status in (200, 201):
                done.append(time.monotonic())

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(capacity)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(done) / (time.monotonic() - started)


def _dashboard_shot(stack: Stack, path: Path, ready: threading.Event, take: threading.Event) -> None:
    # The merchant's browser is on a machine of its own, not on the shop's cores: here
    # Chromium takes only what the shop leaves. At the shop's own priority its screenshot
    # stalled page views for 300 ms; at nice 19, for 250 ms still, as Chromium (run as root)
    # raises its own display threads' priority. In the idle class (SCHED_IDLE, which its
    # processes inherit from this thread, whatever nice value they set) it waits for idle cores.
    tid = threading.get_native_id()
    os.setpriority(os.PRIO_PROCESS, tid, 19)
    with contextlib.suppress(AttributeError, OSError):  # not Linux: nice alone
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
    try:
        dashboard_screenshot(stack, path, ready=ready, take=take)
    except Exception as exc:  # a picture missed is no figure wrong
        print(f"dashboard screenshot failed: {exc}", file=sys.stderr)
    finally:
        ready.set()


def stampede(stack: Stack, profile: Profile, *, label: str, run: str, screenshot: Path | None = None) -> dict:
    """Buyers at a fixed rate for the hot product, with browsing and ordinary checkouts."""
    edge = stack.url("edge", "")
    shot = take = None
    if screenshot is not None:
        # What a merchant sees during the sale: Chromium opens the dashboard before the load
        # starts (its start would weigh on what is measured), and takes the picture part-way.
        ready, take = threading.Event(), threading.Event()
        shot = threading.Thread(target=_dashboard_shot, args=(stack, screenshot, ready, take))
        shot.start()
        ready.wait(60)
    legacy_reset(stack)
    results: dict[str, RunResult] = {}
    # Each stream of requests has a process of its own: a hundred buyer threads sharing one
    # interpreter would delay the shoppers' threads and their measured latency with them. The
    # streams start together once every process is up: a Python process starting (its imports)
    # while the shoppers' requests are timed would weigh on them, and is not the shop's load.
    start_at = time.monotonic() + GENERATORS_START_SECONDS

    def go(name, request, rate, **kwargs):
        results[name] = open_loop_apart(
            name, request, rate=rate, duration=profile.stampede_seconds, start_at=start_at, **kwargs
        )

    threads = [
        threading.Thread(
            target=go,
            args=(
                "buyers",
                buyer_request(edge, run, product_path=f"/shop/{HOT_CATEGORY}/{HOT_PRODUCT}/"),
                profile.buyer_rate,
            ),
            kwargs={"threads": 96, "keep_body": True, "nice": stack.settings.stampede_nice},
        ),
        threading.Thread(
            target=go, args=("browse", browse_request(edge, BROWSE_PATHS), profile.browse_rate), kwargs={"threads": 8}
        ),
        threading.Thread(
            target=go,
            args=(
                "checkout",
                checkout_request(
                    edge, f"{run}-shopper", ["/shop/reels/spinning-reel/", "/shop/reels/baitcasting-reel/"]
                ),
                profile.checkout_rate,
            ),
            kwargs={"threads": 4},
        ),
    ]
    since = time.time()
    stampede_nice = stack.settings.stampede_nice
    if stampede_nice:
        stack.renice("hotpath", stampede_nice)
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, start_at - time.monotonic()))
    sampler = Sampler(stack)
    sampler.start()
    lag = ConsumerLag()
    lag.start()
    cpu_before, wait_before, started = stack.cpu_seconds(), stack.runqueue_seconds(), time.monotonic()
    if shot is not None:
        threading.Timer(profile.stampede_seconds * 0.6, take.set).start()
    for thread in threads:
        thread.join()
    load_until, load_cpu = time.time(), stack.cpu_seconds()
    elapsed = time.monotonic() - started
    if shot is not None:
        take.set()
        shot.join(60)
    cpu_after, wait_after = stack.cpu_seconds(), stack.runqueue_seconds()
    if stampede_nice and not stack.renice("hotpath", 0):
        print("the hot path's servers could not be set back to nice 0: later figures are theirs at nice", stampede_nice)
    # Each part's share of one core over the stampede (the machine has os.cpu_count() of them).
    # A process that exits takes its count along (a PostgreSQL backend that closes): at worst
    # a part is under-counted, never below zero.
    cores = busy_share(cpu_before, cpu_after, elapsed)
    waiting = waiting_share(wait_before, wait_after, elapsed)
    stats = legacy_stats(stack)
    sampler.stop.set()
    sampler.join()
    return {
        "label": label,
        "wall": {"since": since, "until": time.time()},
        # When the load generators stopped, and each part's CPU then: the drain after it.
        "load_until": load_until,
        "load_cpu": load_cpu,
        "results": results,
        "timeline": sampler.rows,
        "legacy": stats,
        "cores": cores,
        "waiting": waiting,
        "consumer_lag": lag.stop(),
    }


def busy_share(before: dict[str, float], after: dict[str, float], elapsed: float) -> dict[str, float]:
    """Each part's share of one core over `elapsed` seconds (from two Stack.cpu_seconds()
    readings). A process that exits takes its count along: a part is under-counted at worst,
    never below zero."""
    return {name: round(max(0.0, after[name] - before.get(name, 0.0)) / elapsed, 2) for name in sorted(after)}


def waiting_share(before: dict[str, float], after: dict[str, float], elapsed: float) -> dict[str, float]:
    """How many of each part's threads were ready to run but waiting for a core, on average
    over `elapsed` seconds (from two Stack.runqueue_seconds() readings)."""
    return {name: round(max(0.0, after[name] - before.get(name, 0.0)) / elapsed, 3) for name in sorted(after)}


def inflight_mean(timeline: list[tuple[float, int, int]]) -> float | None:
    """The legacy API's mean orders in flight (from every caller: the workers' permits and the
    storefront's checkouts) over the sampler's rows while orders were queued (rows whose
    reading failed left out); None with no such row."""
    readings = [inflight for _t, depth, inflight in timeline if depth > 0 and inflight >= 0]
    return round(sum(readings) / len(readings), 2) if readings else None


def cores_since(stack: Stack, before: dict[str, float], *, since: float) -> dict[str, float]:
    """Each part's share of one core from `since` (a time.time()) and its `before` reading
    until now."""
    after, seconds = stack.cpu_seconds(), time.time() - since
    return busy_share(before, after, seconds) if seconds > 0 else {}
