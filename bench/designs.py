"""The ways the hot path could hold a sale's units, each measured at the database alone, as
`db_accept_tps` is (pgbench, prepared, at the hot path's concurrency), side by side in one run:

- `one_row`: ACCEPT_SQL as the hot path runs it. Every acceptance updates the allocation's one
  row and holds its lock until its commit is flushed: the row's queue moves one order a flush.
- `split_rows`: the allocation split over SHARDS rows, each connection reserving on its own
  (pgbench's client id): SHARDS queues instead of one. A buyer refused by an empty row while
  another still holds units is the design's cost in a real sale.
- `unit_rows`: one row per unit, a buyer's unit claimed with `FOR UPDATE SKIP LOCKED`: no
  queue at all, a buyer takes any free unit (Shopify's inventory reservations since 2026).
- `group_commit`: GROUP orders in one statement and one commit, as a process would gather
  the orders that arrive within a millisecond or two: the queue moves GROUP orders a flush.

Everything but the reservation is the hot path's own statement (the order, its number, its
stage, its outbox row, its ACCEPTED event, the sale's window and the monolith's keys), so
the designs differ only in how the units are held. The figure of each is orders a second:
transactions a second times the orders each commits. The designs run in turn (a, b, c, d,
a, ...), `times` rounds, each figure the median of its runs. The statements here take
one-unit orders, as `db_accept_tps` does; `unit_rows` and `group_commit` would need more
for orders of several units (all of a buyer's units or none, each order its own answer).

    python -m bench.designs [--seconds N] [--times N] [--json PATH]

The stampede's full run measures them too (`designs` in its JSON).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from bench.stack import ROOT, Stack

SHARDS = 8  # the hot path's connections (2 processes x 4 threads): one row each
GROUP = 4
UNITS = 300_000  # more than the fastest design takes in a full run's rounds

DESIGNS = ("one_row", "split_rows", "unit_rows", "group_commit")

# The rest of ACCEPT_SQL follows its allocation CTE from here on.
COUNTER = "), counter AS ("

# The designs' own allocation CTEs, in place of ACCEPT_SQL's. The sale's own conditions are
# ACCEPT_SQL's, here checked on the sale's row `a` (read, not locked: its units are held
# elsewhere); SALE_OPEN and SHARDS are filled in by design_statement.
SALE_OPEN = """AND a.id = %(allocation_id)s AND a.is_hot
       AND (a.starts_at IS NULL OR a.starts_at <= now()) AND (a.ends_at IS NULL OR a.ends_at > now())
       AND EXISTS (SELECT 1 FROM shop_product p WHERE p.id = a.product_id AND p.is_active AND p.deleted_at IS NULL)
       AND NOT EXISTS (SELECT 1 FROM shop_placedorder o WHERE o.reference = %(monolith_reference)s)"""

SPLIT_ALLOCATION = """WITH allocation AS (
    UPDATE bench_allocation_shard s SET reserved = s.reserved + %(quantity)s
      FROM orders_saleallocation a
     WHERE s.allocation_id = a.id AND s.shard = (:client_id %% SHARDS)
       AND s.allocated >= s.reserved + s.sold + %(quantity)s
       SALE_OPEN
    RETURNING a.id
"""

UNIT_ALLOCATION = """WITH allocation AS (
    UPDATE bench_allocation_unit u SET taken = true
      FROM orders_saleallocation a
     WHERE u.allocation_id = a.id AND u.id = (
           SELECT id FROM bench_allocation_unit WHERE allocation_id = %(allocation_id)s AND NOT taken
            ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
       SALE_OPEN
    RETURNING a.id
"""

SCRATCH_TABLES = f"""
DROP TABLE IF EXISTS bench_allocation_shard, bench_allocation_unit;
CREATE TABLE bench_allocation_shard (
    allocation_id bigint NOT NULL, shard integer NOT NULL,
    allocated integer NOT NULL, reserved integer NOT NULL DEFAULT 0, sold integer NOT NULL DEFAULT 0,
    PRIMARY KEY (allocation_id, shard),
    CHECK (allocated >= reserved + sold));
CREATE TABLE bench_allocation_unit (
    id bigserial PRIMARY KEY, allocation_id bigint NOT NULL, taken boolean NOT NULL DEFAULT false);
INSERT INTO bench_allocation_shard (allocation_id, shard, allocated)
    SELECT %(allocation_id)s, shard, %(per_shard)s FROM generate_series(0, {SHARDS - 1}) AS shard;
INSERT INTO bench_allocation_unit (allocation_id) SELECT %(allocation_id)s FROM generate_series(1, %(units)s);
CREATE INDEX bench_allocation_unit_free ON bench_allocation_unit (allocation_id, id) WHERE NOT taken;
ANALYZE bench_allocation_shard, bench_allocation_unit;
"""  # noqa: S608 - constants only


def _replaced(text: str, old: str, new: str, count: int) -> str:
    if text.count(old) != count:
        raise ValueError(f"ACCEPT_SQL changed: expected {count} of {old!r}")
    return text.replace(old, new)


def design_statement(design: str) -> tuple[str, int]:
    """ACCEPT_SQL as `design` would run it, and the orders one run of it commits."""
    from orders.acceptance import ACCEPT_SQL

    if design == "one_row":
        return ACCEPT_SQL, 1
    if design in ("split_rows", "unit_rows"):
        head = SPLIT_ALLOCATION if design == "split_rows" else UNIT_ALLOCATION
        head = head.replace("SALE_OPEN", SALE_OPEN).replace("SHARDS", str(SHARDS))
        if ACCEPT_SQL.count(COUNTER) != 1:
            raise ValueError("ACCEPT_SQL changed: its counter CTE not found once")
        return head + ACCEPT_SQL[ACCEPT_SQL.index(COUNTER) :], 1
    if design == "group_commit":
        # GROUP orders of the same quantity: the allocation reserves them at once and the
        # sequence numbers each; every insert after it is per order already.
        text = _replaced(ACCEPT_SQL, "reserved + %(quantity)s", f"reserved + {GROUP} * %(quantity)s", 1)
        text = _replaced(text, "reserved + sold + %(quantity)s", f"reserved + sold + {GROUP} * %(quantity)s", 1)
        numbered = f"AS value FROM allocation, generate_series(1, {GROUP})\n"
        text = _replaced(text, "AS value FROM allocation\n", numbered, 1)
        return text, GROUP
    raise ValueError(f"unknown design {design!r} (known: {', '.join(DESIGNS)})")


def design_script(design: str, *, product_slug: str) -> tuple[str, int]:
    """The pgbench script of `design` for one-unit orders of `product_slug` (as
    bench.speed.accept_script builds the hot path's), and the orders a run of it commits."""
    from bench.speed import accept_script

    statement, orders = design_statement(design)
    return accept_script(product_slug=product_slug, statement=statement), orders


def scratch_tables_create(*, allocation_id: int, allocated: int, units: int = UNITS) -> None:
    """The split rows and the unit rows of the sale `allocation_id`, made afresh."""
    from django.db import connection

    params = {"allocation_id": allocation_id, "per_shard": allocated // SHARDS, "units": units}
    with connection.cursor() as cursor:
        for statement in filter(None, (s.strip() for s in SCRATCH_TABLES.split(";"))):
            cursor.execute(statement % params)


def scratch_tables_drop() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_allocation_shard, bench_allocation_unit")


def designs_measure(database_url: str, out: Path, *, product_slug: str, clients: int, seconds: int, times: int) -> dict:
    """Each design's orders a second at `clients` connections, medians of `times` runs taken
    in turn; `best` names the fastest."""
    from bench.speed import pgbench
    from orders.models import SaleAllocation

    sale = SaleAllocation.objects.get(product__slug=product_slug)
    scratch_tables_create(allocation_id=sale.pk, allocated=sale.allocated)
    scripts = {}
    for design in DESIGNS:
        text, orders = design_script(design, product_slug=product_slug)
        path = out / f"design_{design}.sql"
        path.write_text(text)
        scripts[design] = (path, orders)
    runs: dict[str, list[dict]] = {design: [] for design in DESIGNS}
    try:
        for _ in range(times):
            for design, (path, orders) in scripts.items():
                run = pgbench(database_url, path, clients=clients, seconds=seconds)
                runs[design].append({**run, "orders_per_second": run["tps"] * orders})
    finally:
        scratch_tables_drop()
    figures = {}
    for design, rows in runs.items():
        rates = [row["orders_per_second"] for row in rows]
        figures[design] = {
            "orders_per_second": round(statistics.median(rates), 1),
            "values": [round(rate, 1) for rate in rates],
            "orders_per_commit": scripts[design][1],
            "latency_ms_median": round(statistics.median(row["latency_ms"] for row in rows), 3),
            "failed": sum(row["failed"] for row in rows),
        }
    base = figures["one_row"]["orders_per_second"]
    for figure in figures.values():
        figure["vs_one_row"] = round(figure["orders_per_second"] / base, 2) if base else None
    return {
        "designs": figures,
        "best": max(figures, key=lambda name: figures[name]["orders_per_second"]),
        "clients": clients,
        "seconds": seconds,
        "times": times,
        "shards": SHARDS,
        "group": GROUP,
    }


def main(argv: list[str] | None = None) -> int:
    from bench.sales import CEILING_PRODUCT, stack_with_sales

    parser = argparse.ArgumentParser(prog="python -m bench.designs", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="each pgbench run's length")
    parser.add_argument("--times", type=int, default=3, help="rounds over the designs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "designs")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    stack = Stack(args.out.resolve())
    try:
        # The sale opens against the legacy API's stock of record, so the servers start.
        stack_with_sales(stack, hot_allocation=80)
        stack.stop("worker")  # the orders pgbench writes stay in the outbox, as for db_accept_tps
        figures = designs_measure(
            stack.env["DATABASE_URL"],
            stack.out,
            product_slug=CEILING_PRODUCT,
            clients=stack.settings.hotpath_threads,
            seconds=args.seconds,
            times=args.times,
        )
    finally:
        stack.stop_all()
    text = json.dumps(figures, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
