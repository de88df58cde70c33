"""The cost of tracing, measured: the hot path's acceptance rate (wrk, new orders, as
`bench.stampede` measures `accept`) with tracing at its default sampling and with tracing
off, and what an acceptance costs its own servers' CPU either way.

    tracing_ports(stack)                 # before nginx_start: the two sides' ports
    figures = accept_tracing_cost(stack, path="/shop/rods/<product>/orders", script_for=..., seconds=3)
    # {"accept_rps_tracing_default": ..., "accept_rps_tracing_off": ...,
    #  "tracing_cost_ratio": 1 - default / off, "tracing_sample_rate": ...,
    #  "server_cpu_ms_per_acceptance": {"default": ..., "off": ...}, "tracing_cpu_cost_ratio": ...}

The two sides run side by side: the hot path as it is, and a second hot path with tracing
off, each behind a plain nginx server that sends it what the edge sends (`bench.nginx.
tracing_servers`: the route, the trace header minted at the default rate). The rate's runs
alternate in pairs, one right after the other with no server restarted between them, each
side first in half of the pairs; each pair's ratio is taken, and the cost is one less their
median. Yet on a shared host the machine's speed swings by a fifth from one run to the next,
and a pair's ratio with it. So the CPU an acceptance costs each side's own servers (from
/proc) is also measured with both sides sent orders at once, when both see the same machine:
`tracing_cpu_cost_ratio` is one less the median of those runs' ratios (off to default).
`python -m bench.tracing_cost` runs it alone on a stack of its own (a minute or two)."""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.host import machine_quiet
from bench.stack import ROOT, Stack
from bench.wrk import WRK_ORDER_SCRIPT, wrk
from procs import free_port

OFF = {"TRACING_ENABLED": "0"}
SIDES = {"default": ("traced_edge", "hotpath"), "off": ("untraced_edge", "hotpath_untraced")}


def tracing_ports(stack: Stack) -> None:
    """The ports of the second hot path and of the two sides' nginx servers; called before
    nginx is started, which then has their servers."""
    for name in ("hotpath_untraced", "traced_edge", "untraced_edge"):
        stack.ports.setdefault(name, free_port())


def _at_once(runs: dict[str, dict]) -> dict[str, dict]:
    """wrk runs started together, each with its keyword arguments; their results by name (a
    run that fails raises here)."""
    with concurrent.futures.ThreadPoolExecutor(len(runs)) as pool:
        futures = {name: pool.submit(wrk, **kwargs) for name, kwargs in runs.items()}
        return {name: future.result() for name, future in futures.items()}


def accept_tracing_cost(
    stack: Stack,
    *,
    path: str,
    script_for: Callable[[str], Path],
    seconds: int,
    connections: int = 8,
    pairs: int = 6,
    warm_up_seconds: int = 1,
) -> dict:
    """accept_rps with tracing at its default sampling and off, in `pairs` pairs (the medians
    of each side, and the median of the pairs' ratios), then what an acceptance costs each
    side's servers, both sides sent orders at once `pairs` times; `script_for(run)` gives a
    wrk script whose orders are new for that run. The hot path with tracing off runs only
    while this measures."""
    from django.conf import settings

    try:
        stack.start_hot_server("hotpath_untraced", "config.wsgi_hotpath", stack.ports["hotpath_untraced"], OFF)
        urls = {mode: stack.url(edge, path) for mode, (edge, _server) in SIDES.items()}

        def run(mode: str, name: str, run_connections: int, run_seconds: int) -> dict:
            script = script_for(f"trace-{mode}-{name}-{int(time.time())}")
            return dict(url=urls[mode], connections=run_connections, seconds=run_seconds, script=script)

        for mode in urls:
            wrk(**run(mode, "warm", connections, warm_up_seconds))
        rates: dict[str, list[float]] = {"default": [], "off": []}
        ratios = []
        for index in range(pairs):
            pair: dict[str, float] = {}
            for mode in ("default", "off") if index % 2 == 0 else ("off", "default"):
                machine_quiet(timeout=5.0)
                pair[mode] = wrk(**run(mode, str(index), connections, seconds))["rps"]
                rates[mode].append(pair[mode])
            if pair["off"]:
                ratios.append(pair["default"] / pair["off"])
        # Side by side: both sides sent orders at once, half the connections each, so that
        # both see the same machine at the same moments. Their rates are tied by the sale's
        # one row, which both sides' acceptances queue for; what each acceptance cost its
        # own servers' processes is not.
        server_cpu: dict[str, list[float]] = {"default": [], "off": []}
        cpu_ratios = []
        for index in range(pairs):
            machine_quiet(timeout=5.0)
            before = stack.cpu_seconds()
            results = _at_once(
                {mode: run(mode, f"together-{index}", max(2, connections // 2), seconds) for mode in urls}
            )
            after = stack.cpu_seconds()
            per: dict[str, float] = {}
            for mode, (_edge, server) in SIDES.items():
                # Only acceptances: an error answer costs less, and would make its side look cheaper.
                acceptances = max(0.0, results[mode]["rps"] * seconds - results[mode]["non_2xx"])
                if acceptances:
                    per[mode] = 1000 * (after.get(server, 0.0) - before.get(server, 0.0)) / acceptances
                    server_cpu[mode].append(round(per[mode], 3))
            if per.get("default") and per.get("off"):
                cpu_ratios.append(per["off"] / per["default"])
    finally:
        stack.stop("hotpath_untraced")
    ratio = statistics.median(ratios) if ratios else None
    cpu_ratio = statistics.median(cpu_ratios) if cpu_ratios else None
    return {
        "accept_rps_tracing_default": round(statistics.median(rates["default"]), 1),
        "accept_rps_tracing_off": round(statistics.median(rates["off"]), 1),
        "tracing_cost_ratio": round(1 - ratio, 4) if ratio else None,
        "tracing_sample_rate": float(stack.env.get("TRACING_SAMPLE_RATE", settings.TRACING_SAMPLE_RATE)),
        "accept_rps_runs": rates,
        "pair_ratios": [round(r, 3) for r in ratios],
        "server_cpu_ms_per_acceptance": {
            mode: round(statistics.median(values), 3) if values else None for mode, values in server_cpu.items()
        },
        "server_cpu_ms_per_acceptance_runs": server_cpu,
        "server_cpu_pair_ratios": [round(r, 3) for r in cpu_ratios],
        "tracing_cpu_cost_ratio": round(1 - cpu_ratio, 4) if cpu_ratio else None,
    }


def main(argv: list[str] | None = None) -> int:
    from bench.nginx import nginx_start
    from bench.sales import CEILING_PRODUCT, stack_with_sales

    parser = argparse.ArgumentParser(prog="python -m bench.tracing_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="each wrk run's length")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "tracing")
    args = parser.parse_args(argv)
    stack = Stack(args.out.resolve())
    try:
        stack_with_sales(stack, hot_allocation=80)
        stack.ports["ceiling_edge"] = free_port()
        tracing_ports(stack)
        nginx_start(stack)
        stack.stop("worker")  # as for `accept`: the queue holds what the hot path takes

        def script_for(run: str) -> Path:
            path = stack.out / f"{run}.lua"
            path.write_text(WRK_ORDER_SCRIPT.replace("RUN", run))
            return path

        path = f"/shop/rods/{CEILING_PRODUCT}/orders"
        figures = accept_tracing_cost(stack, path=path, script_for=script_for, seconds=args.seconds)
    finally:
        stack.stop_all()
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
