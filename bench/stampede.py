"""The stampede benchmark: does the sale survive on one machine?

    python -m bench.stampede [--quick] [--drain-only] [--json PATH] [--out DIR]

It starts the production-shaped stack on loopback (see `bench.stack`), seeds a sale, and
measures, at a fixed arrival rate (open model, latency from each request's intended send
time):
1. the stampede through the strangler route: buyers of the hot product far above what the
   legacy API can take, while shoppers browse and check out other products, in rounds
   (`bench.rounds`: three in a full run, each with a sale of its own, its idle browsing and
   its drain; the browsing p99s and the drain are the median of the rounds'), and a round
   more in which Chromium pictures the merchant's dashboard;
2. the same stampede with the route switched off (everything through the monolith);
3. the ceiling: a trivial Django JSON view behind the same nginx and server (granian), sent the hot
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
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import report, report_files
from bench.books import payments_check
from bench.cli import figures_print
from bench.connections import database_port, group_connections
from bench.designs import designs_measure
from bench.edge_cost import edge_overhead
from bench.host import machine, machine_quiet, quiet_waits_capped
from bench.nginx import nginx_start
from bench.permit_uptake import permit_uptake
from bench.phases import (
    FULL,
    QUICK,
    QUICK_QUIET_WAIT_SECONDS,
    Profile,
    calibrate_legacy,
    inflight_mean,
    pages_warm,
    stampede,
    warm_up,
)
from bench.rounds import median_round, rounds_apply, stampede_round
from bench.sales import CEILING_PRODUCT, HOT_CATEGORY, HOT_PRODUCT, product_id, sale_reopen, sales_open, seed
from bench.speed import (
    WrkTarget,
    accept_p99_empty_and_backlog,
    db_accept_limit,
    wrk_best,
    wrk_best_together,
)
from bench.stack import ROOT, Stack
from bench.tracing_cost import accept_tracing_cost, tracing_ports
from bench.wrk import WRK_ORDER_SCRIPT
from procs import free_port

# --- set-up ------------------------------------------------------------------------------


def hotpath_connections(stack: Stack) -> list[int]:
    """The hot path's connections to PostgreSQL, per process (its workers hold one a thread)."""
    return group_connections(stack.processes["hotpath"].pid, database_port(stack.env["DATABASE_URL"]))


def route_switch(stack: Stack, *, on: bool) -> None:
    stack.manage("edge_route", "enable" if on else "disable", "muskie-sale", capture=True)


def _order_script(out: Path, run: str) -> Path:
    script = out / f"order-{run}.lua"
    script.write_text(WRK_ORDER_SCRIPT.replace("RUN", run))
    return script


# --- main --------------------------------------------------------------------------------


def drain_figures(*, legacy_rate: float, idle, on: dict, books: dict) -> dict:
    """What `--drain-only` reports: the first stampede's drain and what it shared the cores with."""
    idle_p99, stampede_p99 = idle.percentile(99), on["results"]["browse"].percentile(99)
    return {
        "legacy_rate_at_capacity": round(legacy_rate, 2),
        "drain_rate": books["drain_rate"],
        "drain_rate_vs_capacity": round(books["drain_rate"] / legacy_rate, 3) if legacy_rate else None,
        "drain_window_seconds": books["drain_window_seconds"],
        "legacy_rate_all_callers": books["legacy_rate_all_callers"],
        "legacy_busy_vs_capacity": round(books["legacy_rate_all_callers"] / legacy_rate, 3) if legacy_rate else None,
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
        tracing_ports(stack)  # tracing's cost: its two sides' servers, behind nginx
        stack.django_setup()
        # The repetitions, then (in a full run) the round the dashboard is pictured in.
        apart = profile.picture_round_apart and not drain_only
        round_count = 1 if drain_only else profile.stampede_rounds + apart
        pictured = round_count - 1 if apart else 0
        seed(stack, profile.allocation * round_count)  # every round's sale held in stock
        stack.start_app_servers()
        sales_open(stack, profile.allocation)
        nginx_start(stack)
        nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
        psql = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
        versions = machine(nginx=nginx.replace("nginx version: ", ""), postgresql=psql, autogroup=stack.autogroup)
        figures: dict = {"quick": quick, "machine": versions, "settings": {**stack.settings.as_dict()}}
        figures["settings"].update(profile.__dict__)

        warm_up(stack)
        # Every thread of the hot path holds its connection before anything is measured.
        figures["hotpath_connections"] = {"after_warm_up": hotpath_connections(stack)}
        # The legacy API's capacity: calibrated warm, on a quiet machine, `reps` times before the
        # first stampede and again after the last one's drain (on a noisy machine one
        # calibration may read a fifth off the next); the drains are set against the median.
        figures["calibrate_quiet_wait_seconds"] = machine_quiet(timeout=30.0)
        calibrations = [calibrate_legacy(stack, profile) for _ in range(profile.reps)]
        rounds = []
        for n in range(round_count):
            if n:  # the last round's sale sold out and drained: a fresh one of the same size
                sale_reopen(stack, HOT_PRODUCT, profile.allocation)
                pages_warm(stack)
            # Idle means idle: the workers' consumers done with the calibration's (or the last
            # round's) orders, and PostgreSQL with what they wrote (one run's idle p99 read 160
            # ms without this wait).
            wait = machine_quiet(timeout=30.0)
            figures.setdefault("idle_quiet_wait_seconds", wait)
            screenshot = out / "dashboard.png" if n == pictured else None
            rounds.append(stampede_round(stack, profile, screenshot=screenshot))
        # ... and no more after the stampedes: none opened for a new thread, none left open by
        # an ended one.
        figures["hotpath_connections"]["after_stampedes"] = hotpath_connections(stack)
        representative = median_round(rounds)
        idle, idle_waiting, on, books = (
            representative.idle,
            representative.idle_waiting,
            representative.on,
            representative.books,
        )
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
            path=f"{ceiling_path}orders",
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
        # The phases above left their acceptances queued (the workers are stopped): each
        # pair measures acceptance with them taken out and with the backlog put in.
        empty, backlog = accept_p99_empty_and_backlog(
            edge,
            ceiling_path,
            product_id=product_id(CEILING_PRODUCT),
            backlog_orders=profile.backlog_orders,
            rate=profile.accept_rate,
            seconds=profile.accept_seconds,
            pairs=profile.reps if quick else max(4, profile.reps + profile.reps % 2),
        )
        # Six pairs, not three: the difference measured is a few tenths of a percent (an even
        # number, so that each side runs first as often).
        edge_reps = 1 if quick else max(6, profile.reps + profile.reps % 2)
        edge_cost = edge_overhead(
            stack, seconds=max(2, profile.wrk_seconds // 2), repetitions=edge_reps, requests=500 if quick else 2000
        )
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
        # The browsing p99s and the drain as the median of the rounds', the books of every round.
        return rounds_apply(figures, rounds, legacy_rate)
    finally:
        quiet_waits_capped(float("inf"))
        stack.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stampede", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run (about two and a half minutes), for CI: it judges only the books",
    )
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
    report_files.write(figures, args.out)
    if args.json:
        args.json.write_text(json.dumps(report.public(figures), indent=2, sort_keys=True))
    print(report.summary(figures))
    return 0 if report.books_ok(figures) else 1


if __name__ == "__main__":
    sys.exit(main())
