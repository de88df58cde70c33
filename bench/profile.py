"""Where the hot path's CPU goes: py-spy on its gunicorn workers under wrk.

    python -m bench.profile [--seconds N] [--out DIR]

It starts the production-shaped stack (bench.stack), opens two sales (one sold out at once),
stops the workers, and while wrk sends sold-out answers, then acceptances, then the trivial
view, py-spy samples the serving processes (only threads holding the GIL: CPU, not waiting).
Then it starts the workers on the orders it accepted and samples them while they drain
(`drain`), with the CPU each order cost the workers, PostgreSQL and the legacy API.
It writes each profile's raw stacks and a summary of the functions that cost the most,
inclusive and on their own (`<out>/profile-<what>.txt`)."""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from bench.nginx import nginx_start
from bench.stack import BIN, ROOT, Stack
from bench.stampede import CEILING_PRODUCT, FULL, HOT_CATEGORY, HOT_PRODUCT, seed
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


def _profile(pids: list[str], url: str, raw: Path, *, seconds: int, script: Path | None) -> dict:
    spies = _spies(pids, raw, seconds=seconds)
    time.sleep(0.5)
    result = wrk(url, connections=16, seconds=seconds - 1, script=script)
    for spy in spies:
        spy.wait()
    return result


def _drain(stack: Stack, raw: Path, *, seconds: int) -> dict:
    """Starts the workers on the queued orders and samples them (every process: the main one
    with its relay and beat, and the pool) while they drain."""
    from orders.models import HotOrder, OrderStatus

    def complete() -> int:
        return HotOrder.objects.filter(status=OrderStatus.COMPLETE).count()

    worker = stack.start_worker()
    time.sleep(2.0)  # its start (imports, the pool's forks) is not the drain's cost
    pids = [str(worker.pid), *_children(worker.pid)]
    before, cpu_before = complete(), stack.cpu_seconds()
    started = time.monotonic()
    spies = _spies(pids, raw, seconds=seconds)
    for spy in spies:
        spy.wait()
    elapsed = time.monotonic() - started
    done, cpu = complete() - before, stack.cpu_seconds()
    per_order = {
        name: round(1000 * (cpu[name] - cpu_before.get(name, 0.0)) / done, 2) if done else None
        for name in ("worker", "postgresql", "legacy", "redis")
        if name in cpu
    }
    return {"orders": done, "rps": done / elapsed, "cpu_ms_per_order": per_order}


def run(out: Path, seconds: int) -> dict:
    stack = Stack(out)
    figures = {}
    try:
        stack.prepare()
        stack.ports["ceiling_edge"] = free_port()
        os.environ.update(stack.env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        seed(stack, dataclasses.replace(FULL, allocation=5))
        stack.start_app_servers()
        for slug, units in ((HOT_PRODUCT, 5), (CEILING_PRODUCT, 1_000_000)):
            stack.manage("sale", "open", slug, "--units", str(units), "--per-order", "2", capture=True)
        nginx_start(stack)
        stack.stop("worker")
        script = out / "profile-order.lua"
        script.write_text(WRK_ORDER_SCRIPT.replace("RUN", f"profile{int(time.time())}"))
        hot = f"/shop/{HOT_CATEGORY}/{HOT_PRODUCT}/orders"
        wrk(stack.url("edge", hot), connections=4, seconds=2, script=script)  # sells the 5 units out
        hotpath, ceiling = _children(stack.processes["hotpath"].pid), _children(stack.processes["ceiling"].pid)
        for what, pids, url, lua in (
            ("soldout", hotpath, stack.url("edge", hot), script),
            ("accept", hotpath, stack.url("edge", f"/shop/rods/{CEILING_PRODUCT}/orders"), script),
            ("ceiling", ceiling, stack.url("ceiling_edge", "/ceiling"), script),
        ):
            raw = out / f"profile-{what}-raw"
            figures[what] = _profile(pids, url, raw, seconds=seconds, script=lua)
            text = summary(sorted(out.glob(f"profile-{what}-raw-*.txt")))
            (out / f"profile-{what}.txt").write_text(f"wrk: {figures[what]}\n\n{text}")
        figures["drain"] = _drain(stack, out / "profile-drain-raw", seconds=seconds)
        text = summary(sorted(out.glob("profile-drain-raw-*.txt")))
        (out / "profile-drain.txt").write_text(f"drain: {figures['drain']}\n\n{text}")
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
    for what, row in run(args.out, args.seconds).items():
        unit = "orders drained" if what == "drain" else "requests"
        print(f"{what}: {row['rps']:.0f} {unit}/s; profile in {args.out / f'profile-{what}.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
