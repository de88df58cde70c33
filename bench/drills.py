"""Fault drills: when parts of the stack fail in a stampede, no order is lost, placed twice or oversold.

    python -m bench.drills [--json PATH] [--out DIR]

It starts its own PostgreSQL and Redis on free loopback ports (see `bench.services`), the legacy
order API and the hot path under gunicorn and a Celery worker, and runs six drills, each a
stampede of buyers at a fixed rate for a product of its own (more buyers than units), with a
fault in the middle of it:
(a) the worker is killed (SIGKILL, its whole process group) while it processes, then started again;
(b) the legacy order API is stopped for 20 seconds, then started again;
(c) Redis (the broker and the cache) is restarted;
(d) PostgreSQL is restarted;
(e) Redis is paused for 8 seconds (SIGSTOP: silent, its connections open);
(f) nothing breaks, but every fourth buyer's card is declined, which gives units back to the
    sale while it is sold out and its sold-out buyers are answered from the hot path's memory.
Buyers retry a refused request (5xx, connection error) with the same Idempotency-Key, as a
real client would; `refused` counts those answers, retried or not (allowed during a fault).
An accepted buyer sends the same request again three times, 0.05 s apart after its 202, each
on a new connection (so another server process may answer), as a client that lost the answer
would, and must be given the same order each time (`replays_wrong` counts the answers that
were not: with the sold-out leases' hold on acceptance taken out, the units-back drill counted
13 of 507).
After each drill it waits for the queue to drain and checks the books against PostgreSQL:
every 202 must end complete exactly once, and nothing may be oversold. It prints a table,
writes the JSON, exits 1 when anything was lost, duplicated or oversold, and stops everything
it started, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import urllib3

from bench.books import books_check, hold_check, legacy_reset, legacy_stats, log_check, payments_check
from bench.dashboard import views_check
from bench.faults import DRILLS, Drill, Plan, Rig, db
from bench.host import machine
from bench.loadgen import RunResult, open_loop
from bench.services import PrivateServices
from bench.shoppers import accepted_numbers, buyer_request
from bench.stack import ROOT, Settings, Stack
from procs import free_port, wait_for_url

DATABASE = "shop_drills"
CLOCKS = ("ORDERS_VISIBILITY_TIMEOUT", "ORDERS_UNACKED_RESTORE_SECONDS", "ORDERS_STALL_SECONDS")


# --- set-up ------------------------------------------------------------------------------


def stack_prepare(stack: Stack, services: PrivateServices, plan: Plan) -> None:
    """Like `Stack.prepare`, but on the private servers: a fresh database, migrated, with the
    demo catalogue. (`prepare` would address the machine's own PostgreSQL and Redis.)"""
    stack.out.mkdir(parents=True, exist_ok=True)
    (stack.out / "logs").mkdir(exist_ok=True)
    stack.ports = {name: free_port() for name in ("hotpath", "legacy")}
    services.postgres.createdb(DATABASE)
    stack.env = stack.production_env(
        database_url=f"{services.postgres.admin_url}/{DATABASE}",
        redis_url=f"{services.redis.url}/0",
        broker_url=f"{services.redis.url}/1",
        # The environment wins over the drills' clocks, to try other values.
        **{name: os.environ.get(name, value) for name, value in plan.clocks.items()},
    )
    stack.install()


def sale_seed(stack: Stack, products: list[tuple[str, str]], allocation: int) -> None:
    """One hot product per drill, each with a sale of its own, so each drill's books stand
    alone. Opened as the merchant does, with the legacy API up: the allocation is held in the
    stock of record first, and the workers place orders against that hold."""
    from shop.models import Product

    for category, slug in products:
        Product.objects.filter(slug=slug, category__slug=category).update(
            stock=allocation + 1000, is_active=True, deleted_at=None
        )
        stack.manage("sale", "open", slug, "--units", str(allocation), "--per-order", "2", capture=True)


# --- buyers ------------------------------------------------------------------------------


class Refusals:
    """Counts every refused attempt (5xx or no answer), retried or not."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.refused = 0
        self.retried_buyers = 0

    def add(self, *, first: bool) -> None:
        with self.lock:
            self.refused += 1
            self.retried_buyers += int(first)


class Replays:
    """Accepted buyers who sent their request again: how many, and how many were not given
    their order (another number, a refusal, an error) with what they got instead."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent = 0
        self.wrong: list[str] = []

    def add(self, *, number: str, status: int, body: bytes) -> None:
        try:
            given = json.loads(body).get("number") if status == 202 else None
        except ValueError:
            given = None
        with self.lock:
            self.sent += 1
            if given != number:
                self.wrong.append(f"{number}: {status} {body[:80]!r}")


def buyers(rig: Rig, drill: Drill, run: str, refusals: Refusals, replays: Replays):
    """A buyer of the drill's product who tries again, with the same key and body, when
    refused; and who, once accepted, sends it again later as if the answer had been lost."""
    plan = rig.plan
    send = buyer_request(
        rig.stack.url("hotpath", ""),
        run,
        product_path=f"/shop/{drill.category}/{drill.product}/",
        decline_every=plan.decline_every if drill.decline else 0,
    )

    def attempt(pool: urllib3.PoolManager, i: int) -> tuple[int, bytes]:
        status, body = 0, b""
        for tried in range(plan.buyer_attempts):
            try:
                status, body = send(pool, i)
            except urllib3.exceptions.HTTPError:
                status, body = 0, b""
            if 0 < status < 500:
                return status, body
            refusals.add(first=tried == 0)
            if rig.stop.wait(plan.buyer_retry_pause):
                break
        return status, body

    def buy(pool: urllib3.PoolManager, i: int) -> tuple[int, bytes]:
        status, body = attempt(pool, i)
        for _ in range(plan.replays if status == 202 else 0):
            if rig.stop.wait(plan.replay_after):
                break
            pool.clear()  # the answer was lost with its connection: the retry comes on a new one
            replay_status, replay_body = attempt(pool, i)
            replays.add(number=json.loads(body)["number"], status=replay_status, body=replay_body)
        return status, body

    return buy


BOOKS = (
    "lost",
    "duplicated",
    "oversold",
    "authorisations_unmatched",
    "hold_drift",
    "log_mismatched",
    "views_differ",
    "replays_wrong",
)


# --- the books ---------------------------------------------------------------------------


def drain_wait(rig: Rig, product: str) -> tuple[bool, str]:
    """Waits until no order of the product is processing; whether it drained, and how it ended."""
    from orders.models import HotOrder, OrderStatus

    started = time.monotonic()
    last, last_change = None, started
    while not rig.stop.is_set():
        now = time.monotonic()
        pending = db(lambda: HotOrder.objects.filter(product__slug=product, status=OrderStatus.PROCESSING).count())
        if pending == 0:
            return True, "drained"
        if pending != last:
            last, last_change = pending, now
        if now - last_change >= rig.plan.stall_seconds:
            return False, f"stalled: {pending} orders did not move for {rig.plan.stall_seconds:.0f}s"
        if now - started >= rig.plan.drain_timeout:
            return False, f"timed out: {pending} orders still processing"
        time.sleep(0.5)
    return False, "interrupted"


# --- a drill -----------------------------------------------------------------------------


def healthy(rig: Rig, category: str, product: str) -> None:
    """The stack answers again before the next drill starts."""
    stack = rig.stack
    wait_for_url(stack.url("legacy", "/legacy-api/ping"), timeout=30)
    wait_for_url(stack.url("hotpath", f"/shop/{category}/{product}/stock"), timeout=30)
    worker = stack.group.get("worker")
    if worker is None or not worker.running:
        stack.start_worker()


def drill_run(rig: Rig, drill: Drill) -> dict:
    plan = rig.plan
    rig.notes = {}
    healthy(rig, drill.category, drill.product)
    with contextlib.suppress(urllib3.exceptions.HTTPError, ValueError, RuntimeError):
        legacy_reset(rig.stack)
    refusals, replays = Refusals(), Replays()
    run = f"{drill.name}-{int(time.time())}"
    result: dict[str, RunResult] = {}

    def stampede() -> None:
        result["buyers"] = open_loop(
            drill.name,
            buyers(rig, drill, run, refusals, replays),
            rate=plan.buyer_rate,
            duration=plan.stampede_seconds,
            threads=64,
            keep_body=True,
            stop=rig.stop,
        )

    print(f"drill {drill.name}: {drill.what}", flush=True)
    thread = threading.Thread(target=stampede, name=f"stampede-{drill.name}", daemon=True)
    started = time.monotonic()
    thread.start()
    time.sleep(plan.fault_after)
    fault_started = time.monotonic()
    drill.fault(rig, drill.product)
    fault_ended = time.monotonic()
    thread.join()
    drained, drain_end = drain_wait(rig, drill.product)
    # Counted from the moment the broken part was back, not from the end of the stampede.
    drain_seconds = round(time.monotonic() - fault_ended, 1) if drained else None
    buyers_result = result.get("buyers")
    numbers = accepted_numbers(buyers_result) if buyers_result else []
    books = db(lambda: books_check(drill.product, numbers, plan.allocation))
    books.update(db(lambda: hold_check(rig.stack, drill.product)))
    books.update(db(lambda: payments_check(rig.stack)))
    books.update(db(lambda: log_check(numbers)))
    # Every read model equal to its rebuild from the log (events rebuild --check exits 0).
    views = views_check(rig.stack)
    books["views_differ"] = 0 if views["in_step"] else 1
    books["replays_wrong"] = len(replays.wrong)
    if not views["in_step"]:
        books["views_check_output"] = views["output"]
    statuses = buyers_result.statuses() if buyers_result else {}
    try:
        legacy = legacy_stats(rig.stack)
    except (urllib3.exceptions.HTTPError, ValueError, RuntimeError):
        legacy = {}
    return {
        "name": drill.name,
        "accepted": books["accepted"],
        "completed": books["completed"],
        "lost": books["lost"],
        "duplicated": books["duplicated"],
        "oversold": books["oversold"],
        "authorisations_unmatched": books["authorisations_unmatched"],
        "hold_drift": books["hold_drift"],
        "log_mismatched": books["log_mismatched"],
        "views_differ": books["views_differ"],
        "replays_wrong": books["replays_wrong"],
        "replays": replays.sent,
        "replays_wrong_examples": replays.wrong[:10],
        "refused": refusals.refused,
        "drain_seconds": drain_seconds,
        "fault": drill.what,
        "product": drill.product,
        "buyers": len(buyers_result.samples) if buyers_result else 0,
        "sold_out": statuses.get(409, 0),
        "final_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "buyers_retried": refusals.retried_buyers,
        "fault_at_seconds": round(fault_started - started, 1),
        "fault_seconds": round(fault_ended - fault_started, 1),
        "drain_end": drain_end,
        "legacy_peak_inflight": legacy.get("peak_inflight"),
        "legacy_capacity": rig.stack.settings.legacy_capacity,
        **{k: v for k, v in books.items() if k not in BOOKS},
        **rig.notes,
    }


# --- main --------------------------------------------------------------------------------


def table(rows: list[dict]) -> str:
    columns = ("name", "accepted", "completed", *BOOKS, "authorisations", "refused", "drain_seconds")
    cells = [list(columns)] + [["-" if row[c] is None else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]

    def line(values: list[str]) -> str:
        first, *rest = values
        return "  ".join([first.ljust(widths[0]), *(v.rjust(w) for v, w in zip(rest, widths[1:], strict=True))])

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *(line(r) for r in cells[1:])])


def run(out: Path, plan: Plan, names: list[str] | None = None) -> dict:
    drills = [d for d in DRILLS if not names or d.name in names]
    services = PrivateServices()
    stack = Stack(out, settings=Settings(database=DATABASE))
    rig = Rig(stack=stack, services=services, plan=plan)
    try:
        services.start()
        stack_prepare(stack, services, plan)
        stack.django_setup()
        stack.start_legacy()
        sale_seed(stack, [(d.category, d.product) for d in drills], plan.allocation)
        stack.start_hot_server("hotpath", "config.wsgi_hotpath", stack.ports["hotpath"])
        stack.start_worker()
        rows = []
        for drill in drills:
            rows.append(drill_run(rig, drill))
        return {
            "drills": rows,
            "machine": machine(postgresql=services.postgres.version(), redis=services.redis.version()),
            "settings": {
                **stack.settings.as_dict(),
                **asdict(plan),
                "clocks": {name: stack.env.get(name, "default") for name in CLOCKS},
            },
        }
    finally:
        rig.stop.set()
        try:
            stack.stop_all()
        finally:
            services.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drills", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "drills", help="results and logs")
    parser.add_argument("--only", action="append", choices=[d.name for d in DRILLS], help="run only this drill")
    parser.add_argument(
        "--shipped-clocks",
        action="store_true",
        help="keep the settings' own recovery clocks (recovery then takes minutes, and so do the drills)",
    )
    args = parser.parse_args(argv)

    def terminated(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)
    started = time.monotonic()
    try:
        # With the shipped clocks a lost message comes back after ORDERS_STALL_SECONDS (300 s)
        # plus a sweep (30 s): the drain waits long enough to see it.
        plan = Plan(clocks={}, stall_seconds=380.0, drain_timeout=480.0) if args.shipped_clocks else Plan()
        results = run(args.out, plan, args.only)
    except KeyboardInterrupt:
        print("interrupted: everything the drills started is stopped", file=sys.stderr)
        return 130
    results["seconds"] = round(time.monotonic() - started, 1)
    text = json.dumps(results, indent=2, sort_keys=True, default=str)
    (args.out / "drills.json").write_text(text)
    if args.json:
        args.json.write_text(text)
    print(table(results["drills"]))
    failed = [r["name"] for r in results["drills"] if any(r[key] for key in BOOKS)]
    if failed:
        print(f"FAIL: {', '.join(BOOKS)} must be 0; not so in {', '.join(failed)}")
    idle = [r["name"] for r in results["drills"] if not r["accepted"]]
    if idle:
        # A drill in which no order was accepted proves nothing.
        print(f"FAIL: no order accepted in {', '.join(idle)}")
    return 1 if failed or idle else 0


if __name__ == "__main__":
    sys.exit(main())
