"""The cost of tracing, measured: the hot path's acceptance rate (wrk, new orders through the
edge, as `bench.stampede` measures `accept`) with tracing at its default sampling and with
tracing off, in pairs of runs one after the other, each on a quiet machine, each side first
in half of the pairs; the cost is one less the median of the pairs' ratios, so that what the
machine does over the minute (a vacuum, the queue the runs fill) weighs on both sides alike.

    figures = accept_tracing_cost(stack, url=..., script_for=lambda run: path, seconds=3)
    # {"accept_rps_tracing_default": ..., "accept_rps_tracing_off": ...,
    #  "tracing_cost_ratio": 1 - default / off, "tracing_sample_rate": ...}

Only the hot path's gunicorn is restarted between the two: the edge (nginx, which mints
trace ids either way), the database and Redis stay as they are. `python -m bench.tracing_cost`
runs it alone on a stack of its own (a minute or two)."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.stack import ROOT, Stack, machine_quiet
from bench.wrk import WRK_ORDER_SCRIPT, wrk

OFF = {"TRACING_ENABLED": "0"}


def _restart_hotpath(stack: Stack, extra_env: dict[str, str]) -> None:
    stack.stop("hotpath")
    stack.start_gunicorn("hotpath", "config.wsgi_hotpath", stack.ports["hotpath"], extra_env)


def accept_tracing_cost(
    stack: Stack,
    *,
    url: str,
    script_for: Callable[[str], Path],
    seconds: int,
    connections: int = 8,
    pairs: int = 6,
    warm_up_seconds: int = 1,
) -> dict:
    """accept_rps with tracing at its default sampling and off, in `pairs` pairs (the medians
    of each side, and the median of the pairs' ratios); `script_for(run)` gives a wrk script
    whose orders are new for that run. The hot path is left running with tracing at its
    default."""
    from django.conf import settings

    rates: dict[str, list[float]] = {"default": [], "off": []}
    ratios = []
    for index in range(pairs):
        sides = (("default", {}), ("off", OFF))
        pair = {}
        for mode, env in sides if index % 2 == 0 else sides[::-1]:
            _restart_hotpath(stack, env)
            run = f"trace-{mode}-{index}-{int(time.time())}"
            wrk(url, connections=connections, seconds=warm_up_seconds, script=script_for(run + "-warm"))
            machine_quiet(timeout=5.0)
            pair[mode] = wrk(url, connections=connections, seconds=seconds, script=script_for(run))["rps"]
            rates[mode].append(pair[mode])
        if pair["off"]:
            ratios.append(pair["default"] / pair["off"])
    _restart_hotpath(stack, {})
    ratio = statistics.median(ratios) if ratios else None
    return {
        "accept_rps_tracing_default": round(statistics.median(rates["default"]), 1),
        "accept_rps_tracing_off": round(statistics.median(rates["off"]), 1),
        "tracing_cost_ratio": round(1 - ratio, 4) if ratio else None,
        "tracing_sample_rate": float(stack.env.get("TRACING_SAMPLE_RATE", settings.TRACING_SAMPLE_RATE)),
        "accept_rps_runs": rates,
        "pair_ratios": [round(r, 3) for r in ratios],
    }


def main(argv: list[str] | None = None) -> int:
    from bench.nginx import nginx_start
    from bench.sales import CEILING_PRODUCT, stack_with_sales
    from procs import free_port

    parser = argparse.ArgumentParser(prog="python -m bench.tracing_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="each wrk run's length")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "tracing")
    args = parser.parse_args(argv)
    stack = Stack(args.out.resolve())
    try:
        stack_with_sales(stack, hot_allocation=80)
        stack.ports["ceiling_edge"] = free_port()
        nginx_start(stack)
        stack.stop("worker")  # as for `accept`: the queue holds what the hot path takes

        def script_for(run: str) -> Path:
            path = stack.out / f"{run}.lua"
            path.write_text(WRK_ORDER_SCRIPT.replace("RUN", run))
            return path

        url = stack.url("edge", f"/shop/rods/{CEILING_PRODUCT}/orders")
        figures = accept_tracing_cost(stack, url=url, script_for=script_for, seconds=args.seconds)
    finally:
        stack.stop_all()
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
