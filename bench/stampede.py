"""The stampede benchmark: does the sale survive on one machine?

    python -m bench.stampede [--quick] [--drain-only] [--json PATH] [--out DIR]

It starts the production-shaped stack on loopback (see `bench.stack`), seeds a sale, and
measures, at a fixed arrival rate (open model, latency from each request's intended send
time):
1. the stampede through the strangler route: buyers of the hot product far above what the
   legacy API can take, while shoppers browse and check out other products;
2. the same stampede with the route switched off (everything through the monolith);
3. the ceiling: a trivial Django JSON view behind the same nginx and gunicorn, sent the hot
   path's own order requests by wrk at increasing concurrency until it saturates, in turn
   with sold-out answers; and the hot path's own acceptance ceiling;
4. the drain of the queue, and the books checked against PostgreSQL.
It writes the JSON figures, a Markdown report and PNG plots, and stops what it started.
`--drain-only` stops after the drain of the first stampede (about 3 minutes): its books, the
drain against the legacy API's calibrated rate, the legacy API's orders in flight, the
browsing p99s and each part's share of the cores, as JSON alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import urllib3

from bench import report
from bench.books import (
    ConsumerLag,
    drain_and_check,
    hold_check,
    legacy_reset,
    legacy_stats,
    log_check,
    payments_check,
)
from bench.cli import figures_print
from bench.dashboard import consumers_cpu, consumers_cpu_reset, dashboard_screenshot, views_check
from bench.designs import designs_measure
from bench.edge_cost import edge_overhead
from bench.loadgen import RunResult, open_loop, open_loop_apart
from bench.nginx import edge_p99_ms, nginx_start
from bench.permit_uptake import permit_uptake
from bench.sales import CEILING_PRODUCT, HOT_CATEGORY, HOT_PRODUCT, product_id, sales_open, seed
from bench.shoppers import CARD_OK, accepted_numbers, browse_request, buyer_request, checkout_request
from bench.speed import (
    WrkTarget,
    accept_p99,
    backlog_fill,
    db_accept_limit,
    queue_depth,
    queue_empty,
    wrk_best,
    wrk_best_together,
)
from bench.stack import ROOT, Stack, machine, machine_quiet, quiet_waits_capped
from bench.tracing_cost import accept_tracing_cost
from bench.wrk import WRK_ORDER_SCRIPT
from procs import free_port


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
    accept_seconds: float = 4.0
    backlog_orders: int = 100_000


# Buyers arrive at two to three times what the legacy API can place (it manages 21 to 27
# orders a second here, with its whole capacity) and well below what the hot path accepts
# (300 to 460 a second on 2 cores), so what is measured is the shop, not a queue at its door.
QUICK = Profile(
    80, 60, 6, 8, 1, 4, 3, (8, 32), 3, 60, reps=1, pgbench_seconds=2, accept_seconds=2, backlog_orders=5_000
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
    # Real orders, for the second hot product: every thread of the hot path opens its
    # connections; the workers place them before anything is measured.
    orders = buyer_request(edge, f"warm{int(time.time())}", product_path=f"/shop/rods/{CEILING_PRODUCT}/")
    open_loop("warm-up orders", orders, rate=20, duration=2, threads=8)
    import redis

    broker = redis.Redis.from_url(stack.env["CELERY_BROKER_URL"])
    deadline = time.monotonic() + 20
    while broker.llen("celery") and time.monotonic() < deadline:
        time.sleep(0.2)


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
    cores = {
        name: round(max(0.0, cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0)) / elapsed, 2)
        for name in sorted(cpu_after)
    }
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


def waiting_share(before: dict[str, float], after: dict[str, float], elapsed: float) -> dict[str, float]:
    """How many of each part's threads were ready to run but waiting for a core, on average
    over `elapsed` seconds (from two Stack.runqueue_seconds() readings)."""
    return {name: round(max(0.0, after[name] - before.get(name, 0.0)) / elapsed, 3) for name in sorted(after)}


# --- set-up ------------------------------------------------------------------------------


def route_switch(stack: Stack, *, on: bool) -> None:
    stack.manage("edge_route", "enable" if on else "disable", "muskie-sale", capture=True)


def _order_script(out: Path, run: str) -> Path:
    script = out / f"order-{run}.lua"
    script.write_text(WRK_ORDER_SCRIPT.replace("RUN", run))
    return script


# --- main --------------------------------------------------------------------------------


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
    if seconds <= 0:
        return {}
    return {name: round(max(0.0, after[name] - before.get(name, 0.0)) / seconds, 2) for name in sorted(after)}


def drain_figures(*, legacy_rate: float, idle, on: dict, books: dict) -> dict:
    """What `--drain-only` reports: the first stampede's drain and what it shared the cores with."""
    idle_p99, stampede_p99 = idle.percentile(99), on["results"]["browse"].percentile(99)
    return {
        "legacy_rate_at_capacity": round(legacy_rate, 2),
        "drain_rate": books["drain_rate"],
        "drain_rate_vs_capacity": round(books["drain_rate"] / legacy_rate, 3) if legacy_rate else None,
        "drain_window_seconds": books["drain_window_seconds"],
        **report.drain_phase_figures(books, legacy_rate),
        "legacy_inflight_mean": inflight_mean(on["timeline"]),
        "browse_p99_ms_idle": round(idle_p99, 1),
        "browse_p99_ms_stampede": round(stampede_p99, 1),
        "cores_busy": on["cores"],
        **{key: books[key] for key in ("accepted", "complete", *report.BOOKS)},
    }


def run(profile: Profile, out: Path, quick: bool, *, drain_only: bool = False) -> dict:
    stack = Stack(out)
    if quick:
        quiet_waits_capped(QUICK_QUIET_WAIT_SECONDS)
    try:
        stack.prepare()
        stack.ports["ceiling_edge"] = free_port()
        stack.django_setup()
        seed(stack, profile.allocation)
        stack.start_app_servers()
        sales_open(stack, profile.allocation)
        nginx_start(stack)
        nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
        psql = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
        versions = machine(nginx=nginx.replace("nginx version: ", ""), postgresql=psql, autogroup=stack.autogroup)
        figures: dict = {"quick": quick, "machine": versions, "settings": {**stack.settings.as_dict()}}
        figures["settings"].update(profile.__dict__)

        warm_up(stack)
        # The legacy API's capacity: calibrated warm, on a quiet machine, `reps` times before the
        # stampede and again after its drain (on a noisy machine one calibration may read a
        # fifth off the next); the drain is set against the median.
        figures["calibrate_quiet_wait_seconds"] = machine_quiet(timeout=30.0)
        calibrations = [calibrate_legacy(stack, profile) for _ in range(profile.reps)]
        # Idle means idle: the workers' consumers done with the calibration's orders, and
        # PostgreSQL with what they wrote (one run's idle p99 read 160 ms without this wait).
        figures["idle_quiet_wait_seconds"] = machine_quiet(timeout=30.0)
        idle_since, idle_wait_before, idle_started = time.time(), stack.runqueue_seconds(), time.monotonic()
        idle = open_loop_apart(
            "browse-idle",
            browse_request(stack.url("edge", ""), BROWSE_PATHS),
            rate=profile.browse_rate,
            duration=profile.idle_seconds,
            threads=8,
        )
        idle_until = time.time()
        idle_waiting = waiting_share(idle_wait_before, stack.runqueue_seconds(), time.monotonic() - idle_started)

        consumers_cpu_reset()
        on = stampede(stack, profile, label="route on", run=f"on{int(time.time())}", screenshot=out / "dashboard.png")
        consumers_cpu_on = consumers_cpu()
        time.sleep(1.2)  # nginx writes its log once a second
        # The same p99s as nginx saw them: the servers' part of what the shoppers waited.
        figures["browse_p99_ms_idle_at_edge"] = edge_p99_ms(stack, BROWSE_PATHS, since=idle_since, until=idle_until)
        figures["browse_p99_ms_stampede_at_edge"] = edge_p99_ms(stack, BROWSE_PATHS, **on["wall"])
        numbers = accepted_numbers(on["results"]["buyers"])
        load_end = datetime.fromtimestamp(on["load_until"], tz=UTC)
        books = drain_and_check(numbers, [HOT_PRODUCT], drain_timeout=profile.drain_timeout, stampede_end=load_end)
        books["cores_busy_after_stampede"] = cores_since(stack, on["load_cpu"], since=on["load_until"])
        books.update(hold_check(stack, HOT_PRODUCT))
        books.update(payments_check(stack))
        books.update(log_check(numbers))
        books["consumer_lag"] = on["consumer_lag"]
        books["consumers_cpu_seconds"] = consumers_cpu_on
        books["views_check"] = views_check(stack)
        machine_quiet(timeout=30.0)
        calibrations += [calibrate_legacy(stack, profile) for _ in range(profile.reps)]
        legacy_rate = statistics.median(calibrations)
        figures["legacy_rate_spread"] = {
            "min": round(min(calibrations), 2),
            "max": round(max(calibrations), 2),
            "values": [round(rate, 2) for rate in calibrations],
        }
        if drain_only:
            return {**figures, **drain_figures(legacy_rate=legacy_rate, idle=idle, on=on, books=books)}

        # Sold-out answers, what most of a stampede receives: the sale is sold out now. The
        # trivial view's runs are taken in turn with them: the two figures' ratio is a bar. It
        # gets the very requests the hot path gets (the order script's POSTs, with their
        # bodies) at the same concurrencies, so that the ratio is the hot path's own cost; a
        # bodiless GET's figure is kept beside it (`ceiling_get_rps`).
        script = out / "order.lua"
        script.write_text(WRK_ORDER_SCRIPT.replace("RUN", f"ceiling{int(time.time())}"))
        hot_orders = stack.url("edge", f"/shop/{HOT_CATEGORY}/{HOT_PRODUCT}/orders")
        trivial = stack.url("ceiling_edge", "/ceiling")
        targets = {
            "soldout": WrkTarget(hot_orders, connections=profile.wrk_connections, script=script),
            "ceiling": WrkTarget(trivial, connections=profile.wrk_connections, script=script),
            "ceiling_get": WrkTarget(trivial, connections=profile.wrk_connections),
        }
        ceilings = wrk_best_together(targets, seconds=profile.wrk_seconds, times=profile.reps)
        soldout, ceiling = ceilings["soldout"], ceilings["ceiling"]

        # As before the hot path: the sale closed (its unsold units back in open stock), so the
        # monolith's buy-now sells from the stock of record itself, and the route off.
        stack.manage("sale", "close", HOT_PRODUCT, capture=True)
        route_switch(stack, on=False)
        nginx_start(stack, reload=True)
        off = stampede(stack, profile, label="route off", run=f"off{int(time.time())}")

        # The hot path's own cost, like the ceiling's: the workers (and the legacy API's CPU
        # they keep busy, on the same two cores) pause while it is measured; the outbox holds
        # what it accepts, which is what the outbox is for.
        stack.stop("worker")
        # Every card authorised over the whole run belongs to one order placed, the monolith's too.
        books["at_end"] = payments_check(stack)
        # Like the ceiling, at more than one concurrency: as many connections as the hot path
        # has threads (2 workers x 4), and twice that.
        ceiling_path = f"/shop/rods/{CEILING_PRODUCT}/"
        accept = wrk_best(
            stack.url("edge", f"{ceiling_path}orders"),
            connections=(8, 16),
            seconds=profile.wrk_seconds,
            times=profile.reps,
            script=script,
        )
        tracing = accept_tracing_cost(
            stack,
            url=stack.url("edge", f"{ceiling_path}orders"),
            script_for=lambda run: _order_script(out, run),
            seconds=profile.wrk_seconds,
            connections=accept["connections"],
            pairs=2 * profile.reps,
        )
        uptake = permit_uptake(rounds=20 if profile.reps > 1 else 5)
        at_database = dict(
            product_slug=CEILING_PRODUCT,
            clients=stack.settings.hotpath_threads,
            seconds=profile.pgbench_seconds,
            times=profile.reps,
        )
        limit = db_accept_limit(stack.env["DATABASE_URL"], out, **at_database)
        # The other ways of holding the units, at the database alone (a full run only).
        designs = None if quick else designs_measure(stack.env["DATABASE_URL"], out, **at_database)
        edge = stack.url("edge", "")
        latency = dict(rate=profile.accept_rate, seconds=profile.accept_seconds, times=profile.reps)
        # The phases above left their acceptances queued (the workers are stopped): an empty
        # queue is measured once they are taken out, the backlog once it is put in.
        taken_out = queue_empty(product_id=product_id(CEILING_PRODUCT))
        queued_empty = queue_depth()
        empty = accept_p99(edge, ceiling_path, run=f"empty{int(time.time())}", **latency)
        backlog_fill(product_id=product_id(CEILING_PRODUCT), orders=profile.backlog_orders, run=str(int(time.time())))
        queued_backlog = queue_depth()
        backlog = accept_p99(edge, ceiling_path, run=f"backlog{int(time.time())}", **latency)
        empty.update(orders_queued=queued_empty, orders_taken_out_before=taken_out)
        backlog["orders_queued"] = queued_backlog
        # Six pairs, not three: the difference measured is a few tenths of a percent (an even
        # number, so that each side runs first as often).
        edge_reps = 1 if quick else max(6, profile.reps + profile.reps % 2)
        edge_cost = edge_overhead(stack, seconds=max(2, profile.wrk_seconds // 2), repetitions=edge_reps)
        figures.update(
            report.figures(
                profile=profile,
                stack=stack,
                idle=idle,
                idle_waiting=idle_waiting,
                on=on,
                off=off,
                books=books,
                ceiling=ceiling,
                ceiling_get=ceilings["ceiling_get"],
                accept=accept,
                legacy_rate=legacy_rate,
                soldout=soldout,
                limit=limit,
                empty=empty,
                backlog=backlog,
                edge=edge_cost,
                tracing=tracing,
                uptake=uptake,
                designs=designs,
            )
        )
        return figures
    finally:
        quiet_waits_capped(float("inf"))
        stack.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stampede", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute), for CI")
    parser.add_argument(
        "--drain-only", action="store_true", help="only the first stampede and its drain (about 3 minutes)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out", help="report, plots and logs")
    args = parser.parse_args(argv)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    profile = QUICK if args.quick else FULL
    started = time.monotonic()
    args.out = args.out.resolve()
    figures = run(profile, args.out, args.quick, drain_only=args.drain_only)
    if args.drain_only:
        figures_print(figures, args.json)
        return 0 if report.books_ok(figures) else 1
    figures["seconds"] = round(time.monotonic() - started, 1)
    report.write(figures, args.out)
    if args.json:
        args.json.write_text(json.dumps(report.public(figures), indent=2, sort_keys=True))
    print(report.summary(figures))
    return 0 if report.books_ok(figures) else 1


if __name__ == "__main__":
    sys.exit(main())
