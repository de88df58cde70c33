"""The speed figures of the benchmark, each the median of repetitions inside one run, with its
spread: the database's own limit for an acceptance (pgbench running the hot path's own
ACCEPT_SQL, with and without its event), wrk ceilings, and acceptance latency with an empty
queue and with a deep backlog."""

from __future__ import annotations

import collections
import functools
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.host import machine_quiet
from bench.loadgen import open_loop_apart
from bench.shoppers import buyer_request
from bench.wrk import wrk


def repeated(measure: Callable[[], float], times: int) -> dict:
    """`measure()` run `times` times: the median, the spread (min, max) and every value."""
    values = [measure() for _ in range(times)]
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
        "values": [round(v, 1) for v in values],
    }


def wrk_best(url: str, *, connections: tuple[int, ...], seconds: int, times: int, script: Path | None = None) -> dict:
    """wrk `times` times at each concurrency; the figure is the best concurrency's median (a
    ceiling is what a server does at its best concurrency). Each concurrency is judged by its
    own median, never by one run: a single run picked the best of several noisy ones, and the
    repetitions at a concurrency chosen that way read lower (the winner's curse). Each run
    starts once the machine is quiet (the last phase's vacuum or drain done), at most 10 s on."""
    target = WrkTarget(url, connections=connections, script=script)
    return wrk_best_together({"only": target}, seconds=seconds, times=times)["only"]


@dataclass(frozen=True)
class WrkTarget:
    url: str
    connections: tuple[int, ...]
    script: Path | None = None


def _wrk_quiet(target: WrkTarget, connections: int, seconds: int) -> dict:
    machine_quiet(timeout=10.0)
    return wrk(target.url, connections=connections, seconds=seconds, script=target.script)


def wrk_best_together(
    targets: dict[str, WrkTarget], *, seconds: int, times: int, run: Callable[[WrkTarget, int, int], dict] = _wrk_quiet
) -> dict[str, dict]:
    """wrk_best for each target, in rounds: each round runs every target at each of its
    concurrencies (a at 4, 16, ..., then b at 4, 16, ...), so that a ratio of two figures
    compares runs made seconds apart, not minutes, and what the machine itself does meanwhile
    (another tenant, a vacuum) weighs on both alike."""
    runs: dict[str, dict[int, list[dict]]] = {name: {c: [] for c in t.connections} for name, t in targets.items()}
    for _ in range(times):
        for name, target in targets.items():
            for connections in target.connections:
                runs[name][connections].append(run(target, connections, seconds))
    return {name: _wrk_summary(by_concurrency) for name, by_concurrency in runs.items()}


def _wrk_figure(runs: list[dict]) -> dict:
    rps = [run["rps"] for run in runs]
    return {
        "connections": runs[0]["connections"],
        "median": round(statistics.median(rps), 1),
        "min": round(min(rps), 1),
        "max": round(max(rps), 1),
        "values": [round(v, 1) for v in rps],
        "p99_ms": round(statistics.median(run["p99_ms"] for run in runs), 1),
        "non_2xx": sum(run["non_2xx"] for run in runs),
    }


def _wrk_summary(by_concurrency: dict[int, list[dict]]) -> dict:
    """The best concurrency's figure (by median), with every concurrency's in `sweep`."""
    figures = [_wrk_figure(runs) for runs in by_concurrency.values()]
    best = max(figures, key=lambda figure: figure["median"])
    sweep = [{**figure, "rps": figure["median"]} for figure in figures]
    return {**best, "sweep": sweep}


# --- the database's own limit ----------------------------------------------------------

# What differs from one order to the next is made by the database, so that every pgbench
# transaction runs the very same statement text (prepared, as psycopg prepares the hot path's).
UNIQUE_SQL = {
    "token": "md5(random()::text || clock_timestamp()::text)",
    "idempotency_key": "md5(random()::text || clock_timestamp()::text || 'k')",
    "event_uuid": "gen_random_uuid()",
    "now": "now()",
    "reserved_until": "now() + interval '15 minutes'",
}
EVENT_CTE = re.compile(r"\), accepted_event AS \(.*?\n\)\n(?=SELECT id, number FROM hot_order)", re.S)


def accept_script(*, product_slug: str, without_event: bool = False, statement: str | None = None) -> str:
    """ACCEPT_SQL exactly as the hot path sends it for a one-unit order of `product_slug`,
    its constant parameters as literals, its unique ones made by the database. `statement`:
    another form of it with the same parameters (bench.designs)."""
    from django.db import connection
    from psycopg import sql

    from orders.acceptance import ACCEPT_SQL, accept_params, order_draft
    from orders.inputs import OrderInput
    from orders.selectors import _hot_product_load

    product = _hot_product_load(product_slug)
    data = OrderInput(quantity=1, name="Database Limit", email="db-limit@example.com", card_number="4242424242424242")
    order = order_draft(product=product, idempotency_key="x", fingerprint="f" * 64, data=data, client_ip="127.0.0.1")
    params = accept_params(order, allocation_id=product["allocation_id"], product_slug=product_slug)
    connection.ensure_connection()
    raw = connection.connection
    literals = {name: UNIQUE_SQL.get(name) or sql.Literal(value).as_string(raw) for name, value in params.items()}
    text = ACCEPT_SQL if statement is None else statement
    if without_event:
        text, found = EVENT_CTE.subn(")\n", text)
        assert found == 1, "ACCEPT_SQL's event CTE not found"
    # The statement's comments go before its literals are in: a sealed card or a token may
    # hold "--" too (a run's pgbench once failed on a truncated Fernet token).
    lines = (line.split("--")[0].strip() for line in text.splitlines())
    return " ".join(line for line in lines if line) % literals + ";\n"


def pgbench(database_url: str, script: Path, *, clients: int, seconds: int) -> dict:
    machine_quiet(timeout=10.0)  # the last run's autovacuum done, as for wrk
    out = subprocess.run(
        [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            "-T",
            str(seconds),
            "-f",
            str(script),
            database_url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", out)
    return {"tps": tps, "latency_ms": latency, "failed": int(failed.group(1)) if failed else 0}


def db_accept_limit(database_url: str, out: Path, *, product_slug: str, clients: int, seconds: int, times: int) -> dict:
    """`db_accept_tps`: ACCEPT_SQL alone, at the hot path's own concurrency, no web stack; and
    the same without its ACCEPTED event, for what writing the event adds to an acceptance."""
    results = {}
    for name, without_event in (("with_event", False), ("without_event", True)):
        script = out / f"accept_{name}.sql"
        script.write_text(accept_script(product_slug=product_slug, without_event=without_event))
        runs = [pgbench(database_url, script, clients=clients, seconds=seconds) for _ in range(times)]
        tps = [run["tps"] for run in runs]
        results[name] = {
            "median": round(statistics.median(tps), 1),
            "min": round(min(tps), 1),
            "max": round(max(tps), 1),
            "latency_ms_median": round(statistics.median(run["latency_ms"] for run in runs), 3),
            "failed": sum(run["failed"] for run in runs),
        }
    with_event, without = results["with_event"], results["without_event"]
    return {
        "db_accept_tps": with_event["median"],
        "db_accept": results,
        "clients": clients,
        # Per acceptance, at that concurrency: the event's row and its index entries.
        "event_cost": {
            "tps_with_event": with_event["median"],
            "tps_without_event": without["median"],
            "share_of_acceptance": round(1 - with_event["median"] / without["median"], 3)
            if without["median"]
            else None,
            "ms_per_acceptance": round(with_event["latency_ms_median"] - without["latency_ms_median"], 3),
        },
    }


# --- acceptance latency, empty queue against a deep backlog ----------------------------


def _accept_p99_once(edge: str, product_path: str, *, run: str, rate: float, seconds: float) -> tuple[float, dict]:
    """One acceptance p99 at a fixed arrival rate well under the limit (open model), once the
    machine is quiet (as for wrk), after a second of the same unmeasured (the tables were
    just emptied or filled, and a server just restarted opens its connections then)."""
    machine_quiet(timeout=10.0)
    request = functools.partial(open_loop_apart, rate=rate, threads=32)
    request(f"accept-{run}-warm", buyer_request(edge, f"{run}w", product_path=product_path), duration=1.0)
    result = request(f"accept-{run}", buyer_request(edge, run, product_path=product_path), duration=seconds)
    return result.percentile(99), result.statuses()


def pairs_order(pairs: int) -> list[str]:
    """The sides of `pairs` pairs in the order they are measured: empty then backlog, then
    backlog then empty, and so on, so that each side runs first in half of them and a switch
    of the tables' state (100,000 orders put in or taken out) comes once a pair."""
    return [side for i in range(pairs) for side in (("empty", "backlog") if i % 2 == 0 else ("backlog", "empty"))]


def accept_p99_empty_and_backlog(
    edge: str, product_path: str, *, product_id: int, backlog_orders: int, rate: float, seconds: float, pairs: int
) -> tuple[dict, dict]:
    """Acceptance p99 with an empty queue and with `backlog_orders` orders queued, in pairs
    measured side by side (`pairs_order`), so that both sides of a pair see the same machine:
    a hypervisor that takes more of it for a minute weighs on both, not on one side's three
    repetitions. A switch to the empty side takes the product's orders out (`queue_empty`), a
    switch to the backlog puts it in (`backlog_fill`) beside the orders the empty side left.
    Returns the two sides' figures, each with its median, spread and values in the order
    measured; the backlog's also with each pair's ratio (`pair_ratios`, backlog over empty)."""
    stamp = int(time.time())
    p99s: dict[str, list[float]] = {"empty": [], "backlog": []}
    statuses: dict[str, collections.Counter] = {"empty": collections.Counter(), "backlog": collections.Counter()}
    queued: dict[str, list[int]] = {"empty": [], "backlog": []}
    taken_out: list[int] = []
    state = None
    for n, side in enumerate(pairs_order(pairs)):
        if side != state:
            if side == "empty":
                taken_out.append(queue_empty(product_id=product_id))
            else:  # made after the product's last order, which the empty side just left
                backlog_fill(product_id=product_id, orders=backlog_orders, run=f"{stamp}-{n}")
            state = side
        queued[side].append(queue_depth())
        p99, seen = _accept_p99_once(edge, product_path, run=f"{side}{stamp}-{n}", rate=rate, seconds=seconds)
        p99s[side].append(p99)
        statuses[side].update(seen)
    figures = {}
    for side, values in p99s.items():
        figures[side] = {
            "median": round(statistics.median(values), 1),
            "min": round(min(values), 1),
            "max": round(max(values), 1),
            "values": [round(v, 1) for v in values],
            "statuses": {str(k): v for k, v in sorted(statuses[side].items())},
            "orders_queued": max(queued[side]),
        }
    figures["empty"]["orders_taken_out_before"] = taken_out[0]
    figures["backlog"]["pair_ratios"] = [
        round(b / e, 3) if e else None for b, e in zip(p99s["backlog"], p99s["empty"], strict=True)
    ]
    return figures["empty"], figures["backlog"]


BACKLOG_SQL = """
WITH template AS (
    SELECT * FROM orders_hotorder WHERE product_id = %(product_id)s ORDER BY id DESC LIMIT 1
), made AS (
    INSERT INTO orders_hotorder (
        number, token, idempotency_key, fingerprint, product_id, quantity, unit_price_cents,
        customer_name, customer_email, card_sealed, card_last4, status, stage, reservation,
        reserved_until, legacy_number, attempts, last_error, client_ip, created_at, updated_at, claimed_by)
    SELECT 'B' || lpad(n::text, 7, '0'), md5('t' || n || %(run)s), 'backlog-' || %(run)s || '-' || n,
        t.fingerprint, t.product_id, 1, t.unit_price_cents, t.customer_name, 'backlog' || n || '@example.com',
        t.card_sealed, t.card_last4, t.status, t.stage, t.reservation, t.reserved_until, '', 0, '', t.client_ip,
        now(), now(), ''
      FROM template t, generate_series(1, %(orders)s) AS n
    RETURNING id, number, created_at
)
INSERT INTO orders_outboxmessage (order_id, created_at, publish_attempts, last_error, trace_context)
SELECT id, created_at, 0, '', '{}'::jsonb FROM made
"""


def _settled(cursor) -> None:
    """As a database that has lived with its rows a while: autovacuum, which 100,000 inserts
    or deletes set off, done before the measure rather than during it, and the pages they
    dirtied written out (a checkpoint), as their own checkpoints would have, spread over the
    minutes it took to write them."""
    for table in ("orders_hotorder", "orders_outboxmessage", "orders_orderstageevent"):
        cursor.execute(f"VACUUM (ANALYZE) {table}")
    cursor.execute("CHECKPOINT")


def queue_depth() -> int:
    """Accepted orders waiting for the relay: the outbox's rows."""
    from orders.models import OutboxMessage

    return OutboxMessage.objects.count()


def queue_empty(*, product_id: int) -> int:
    """Takes the orders the speed phases accepted for `product_id` out of the tables acceptance
    writes to, so that acceptance with an empty queue is measured on one: the workers are
    stopped by then, so they were never to be placed, and the product's books are not
    counted. Returns how many were taken out."""
    from django.db import connection

    orders = "SELECT id FROM orders_hotorder WHERE product_id = %s"
    with connection.cursor() as cursor:
        for table in ("orders_outboxmessage", "orders_orderstageevent", "orders_deadletter"):
            cursor.execute(f"DELETE FROM {table} WHERE order_id IN ({orders})", [product_id])  # noqa: S608
        cursor.execute("DELETE FROM orders_hotorder WHERE product_id = %s", [product_id])
        taken = cursor.rowcount
        _settled(cursor)
    return taken


def backlog_fill(*, product_id: int, orders: int, run: str) -> None:
    """`orders` accepted orders waiting to be placed, as a stampede far past the legacy API's
    pace leaves them in the tables acceptance writes to: their rows and outbox rows (numbers
    B…, apart from the hot path's T… numbers, for a product whose books are not counted)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(BACKLOG_SQL, {"product_id": product_id, "orders": orders, "run": run})
        _settled(cursor)
