"""Where the hot path's CPU goes: py-spy on its server's worker processes under wrk.

    python -m bench.profile [--seconds N] [--out DIR]

It starts the production-shaped stack (bench.stack), opens two sales (one sold out at once),
stops the workers, and while wrk sends sold-out answers, then acceptances, then the trivial
view, py-spy samples the serving processes (only threads holding the GIL: CPU, not waiting),
and the CPU each request cost the serving processes, PostgreSQL, Redis and nginx is taken
from /proc over wrk's run (`cpu_ms_per_request`). Before those, with the sale sold out, it
measures a sold-out answer's CPU against the trivial view's in one process, without a server
(`bench.soldout_requests`, written to `<out>/soldout-requests.json`).
Between the sold-out answers and the acceptances, with the workers started, it accepts a few
hundred orders and samples the workers while they drain them (`drain`): the CPU each order
cost the workers, PostgreSQL and the legacy API is taken over the whole drain of those
orders, so that each order's relay, consumers and task are counted once.
It writes each profile's raw stacks and a summary of the functions that cost the most,
inclusive and on their own (`<out>/profile-<what>.txt`)."""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from bench.nginx import nginx_start
from bench.sales import CEILING_PRODUCT, HOT_CATEGORY, HOT_PRODUCT, stack_with_sales
from bench.stack import BIN, ROOT, Stack
from bench.wrk import WRK_ORDER_SCRIPT, wrk
from procs import free_port

OURS = re.compile(r"[(/](orders|shop|config|edge|events|readmodels|tracing|legacy_client)/")


def _frame(frame: str) -> str:
    """`function (path:line)` with the path cut to the package."""
    return re.sub(r"\((?:.*/)?(site-packages|lib/python3\.\d+)/", "(", frame)


def summary(paths: list[Path], *, top: int = 40) -> str:
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    total = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            n, frames = int(count), [_frame(f) for f in stack.split(";")]
            total += n
            for frame in set(frames):
                inclusive[frame] += n
            own[frames[-1]] += n
    if not total:
        return "no samples\n"

    def rows(counter: collections.Counter, keep) -> list[str]:
        return [f"{100 * n / total:5.1f}%  {name}" for name, n in counter.most_common() if keep(name)][:top]

    return "\n".join(
        [
            f"{total} samples (threads holding the GIL)",
            "",
            "Inclusive, the shop's own code:",
            *rows(inclusive, lambda name: bool(OURS.search(name))),
            "",
            "Inclusive, everything:",
            *rows(inclusive, lambda name: True),
            "",
            "On their own:",
            *rows(own, lambda name: True),
            "",
        ]
    )


def _children(pid: int) -> list[str]:
    return subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()


def _spies(pids: list[str], raw: Path, *, seconds: int) -> list[subprocess.Popen]:
    """py-spy sampling each of `pids` for `seconds` (only threads holding the GIL), each into
    `<raw>-<pid>.txt`."""
    return [
        subprocess.Popen(
            [str(BIN / "py-spy"), "record", "-p", pid, "-d", str(seconds), "-r", "250", "-f", "raw", "--gil"]
            + ["--nonblocking", "-o", f"{raw}-{pid}.txt"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]


def _profile(stack: Stack, pids: list[str], url: str, raw: Path, *, seconds: int, script: Path | None) -> dict:
    """py-spy on `pids` while wrk sends `url`; with the CPU each request cost each part of the
    stack (the hot path's or the trivial view's servers, PostgreSQL, Redis, nginx) over wrk's
    run, py-spy's own sampling included."""
    spies = _spies(pids, raw, seconds=seconds)
    time.sleep(0.5)
    cpu_before = stack.cpu_seconds()
    result = wrk(url, connections=16, seconds=seconds - 1, script=script)
    cpu = stack.cpu_seconds()
    for spy in spies:
        spy.wait()
    parts = ("hotpath", "ceiling", "postgresql", "redis", "nginx")
    result["cpu_ms_per_request"] = _cpu_ms_each(cpu_before, cpu, result["rps"] * (seconds - 1), parts, digits=3)
    return result


def _cpu_ms_each(before: dict, after: dict, count: float, parts: tuple[str, ...], *, digits: int) -> dict:
    """Milliseconds of CPU each of `parts` used per one of `count` (a request, an order),
    between two `Stack.cpu_seconds()` readings."""
    return {
        name: round(1000 * (after[name] - before.get(name, 0.0)) / count, digits) if count else None
        for name in parts
        if name in after
    }


def _drain(stack: Stack, url: str, script: Path, raw: Path, *, seconds: int) -> dict:
    """Starts the workers and, once they are idle, accepts orders for a second and samples the
    workers (every process: the main one with its relay and beat, and the pool) while they
    drain them. The CPU per order is taken from just before the first order until every one of
    them is complete (at most a minute past the sampling)."""
    from django.db.models import Max, Min

    from orders.models import HotOrder, OrderStatus

    worker = stack.start_worker()
    time.sleep(3.0)  # its start (imports, the pool's forks) is not the drain's cost
    pids = [str(worker.pid), *_children(worker.pid)]
    first = HotOrder.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    cpu_before = stack.cpu_seconds()
    spies = _spies(pids, raw, seconds=seconds)
    wrk(url, connections=2, seconds=1, script=script)
    for spy in spies:
        spy.wait()
    queued = HotOrder.objects.filter(pk__gt=first)
    total = queued.count()
    deadline = time.monotonic() + 60
    while (done := queued.filter(status=OrderStatus.COMPLETE).count()) < total and time.monotonic() < deadline:
        time.sleep(0.2)
    cpu = stack.cpu_seconds()
    stack.stop("worker")
    per_order = _cpu_ms_each(cpu_before, cpu, done, ("worker", "postgresql", "legacy", "redis"), digits=2)
    # As the stampede's books take it: from the first order accepted to the last one placed.
    window = queued.aggregate(first=Min("created_at"), last=Max("completed_at"))
    seconds_taken = (window["last"] - window["first"]).total_seconds() if done else 0.0
    rps = done / seconds_taken if seconds_taken else 0.0
    return {"orders": done, "of": total, "rps": rps, "cpu_ms_per_order": per_order}


def run(out: Path, seconds: int) -> dict:
    stack = Stack(out)
    figures = {}
    try:
        sys.path.insert(0, str(ROOT))
        stack_with_sales(stack, hot_allocation=5)
        stack.ports["ceiling_edge"] = free_port()
        nginx_start(stack)
        stack.stop("worker")
        script = out / "profile-order.lua"
        script.write_text(WRK_ORDER_SCRIPT.replace("RUN", f"profile{int(time.time())}"))
        hot = f"/shop/{HOT_CATEGORY}/{HOT_PRODUCT}/orders"
        wrk(stack.url("edge", hot), connections=4, seconds=2, script=script)  # sells the 5 units out
        in_process = out / "soldout-requests.json"
        subprocess.run(
            [sys.executable, "-m", "bench.soldout_requests", "--json", str(in_process)],
            cwd=ROOT,
            env={**stack.env, "SHOP_DEPLOYMENT": "hotpath"},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        figures["soldout_in_process"] = json.loads(in_process.read_text())
        hotpath, ceiling = _children(stack.processes["hotpath"].pid), _children(stack.processes["ceiling"].pid)
        orders = stack.url("edge", f"/shop/rods/{CEILING_PRODUCT}/orders")
        for what, pids, url, lua in (
            ("soldout", hotpath, stack.url("edge", hot), script),
            ("drain", None, orders, script),
            ("accept", hotpath, orders, script),
            ("ceiling", ceiling, stack.url("ceiling_edge", "/ceiling"), script),
        ):
            raw = out / f"profile-{what}-raw"
            if pids is None:
                figures[what] = _drain(stack, url, lua, raw, seconds=seconds)
            else:
                figures[what] = _profile(stack, pids, url, raw, seconds=seconds, script=lua)
            text = summary(sorted(out.glob(f"profile-{what}-raw-*.txt")))
            (out / f"profile-{what}.txt").write_text(f"{what}: {figures[what]}\n\n{text}")
        return figures
    finally:
        stack.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "profile")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.out.glob("profile-*-raw-*.txt"):
        path.unlink()
    figures = run(args.out, args.seconds)
    in_process = figures.pop("soldout_in_process")
    print(
        "a sold-out answer in one process: {soldout} µs of CPU, the trivial view {ceiling}, "
        "without the short way {soldout_whole_way}".format(**in_process["us_per_request"])
    )
    for what, row in figures.items():
        unit = "orders drained" if what == "drain" else "requests"
        print(f"{what}: {row['rps']:.0f} {unit}/s; profile in {args.out / f'profile-{what}.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
