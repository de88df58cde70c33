"""How fast a freed legacy-capacity permit is taken up again by a worker waiting for it.

    python -m bench.permit_uptake [--rounds N] [--json PATH]

`permit_uptake()` runs in a process whose Django is set up on the stack's PostgreSQL, while
the stack's workers are stopped (they share the permits). Each round one thread holds the
only permit, another asks for it and goes to sleep on its LISTEN; the first releases it, and
the time from the release's start to the waiter's return with the permit is the uptake: the
release's commit and notification, the wake-up, and the waiter's claim and commit. Also
counted: the waiter's looks at the permits' table (a poll would make one per interval).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

from bench.cli import figures_print, stack_ready
from bench.stack import ROOT


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _wait(taken: list[float], counted: list[int]) -> None:
    """A worker waiting for the permit: when it got it, and how many times it looked."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orders import permits

    try:
        with CaptureQueriesContext(connection) as queries:
            number = permits.legacy_slot_acquire(holder="bench-waiter", wait_seconds=30)
        taken.append(time.perf_counter())
        sqls = [q["sql"] for q in queries.captured_queries]
        counted.append(sum(1 for sql in sqls if sql.startswith("SELECT") and "orders_legacyslot" in sql))
        if number != 1:
            raise RuntimeError("the waiter did not get the permit")
    finally:
        connection.close()


def permit_uptake(*, rounds: int = 20, settle_seconds: float = 0.05) -> dict:
    """Milliseconds from a permit's release to its taking by a waiting worker (median, p90,
    max and every round), and the waiter's looks per wait. Needs PostgreSQL."""
    from django.db import connection
    from django.test.utils import override_settings

    from orders import permits
    from orders.models import LegacySlot

    if connection.vendor != "postgresql":
        raise RuntimeError("the permits wait on LISTEN/NOTIFY only on PostgreSQL")
    uptakes: list[float] = []
    looks: list[int] = []
    with override_settings(LEGACY_CAPACITY=1, ORDERS_LEGACY_CONCURRENCY=1):
        LegacySlot.objects.filter(number=1).update(holder="", lease_until=None)
        for _ in range(rounds):
            if permits.legacy_slot_acquire(holder="bench-holder", wait_seconds=5) != 1:
                raise RuntimeError("the permit is held elsewhere: stop the workers first")
            taken: list[float] = []
            counted: list[int] = []
            waiter = threading.Thread(target=_wait, args=(taken, counted))
            waiter.start()
            time.sleep(settle_seconds)  # the waiter asleep on its LISTEN, as a worker waiting its turn
            released = time.perf_counter()
            permits.legacy_slot_release(number=1, holder="bench-holder")
            waiter.join(timeout=60)
            if not taken:
                raise RuntimeError("the waiter never took the permit")
            uptakes.append((taken[0] - released) * 1000)
            looks.append(counted[0])
            permits.legacy_slot_release(number=1, holder="bench-waiter")
    return {
        "permit_uptake_ms": round(statistics.median(uptakes), 2),
        "permit_uptake_p90_ms": round(_percentile(uptakes, 0.9), 2),
        "permit_uptake_max_ms": round(max(uptakes), 2),
        "permit_uptake_runs_ms": [round(u, 2) for u in uptakes],
        "permit_wait_looks": statistics.median(looks),
        # What a waiter would sleep between two looks without being told (the backoff's cap).
        "permit_poll_cap_ms": permits.SLOT_WAIT_MAX_SECONDS * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.permit_uptake", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--settle", type=float, default=0.05, help="seconds the waiter waits before the release")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "permit-uptake")
    args = parser.parse_args(argv)
    with stack_ready(args.out):
        figures = permit_uptake(rounds=args.rounds, settle_seconds=args.settle)
    figures_print(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
