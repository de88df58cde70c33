"""What the edge middleware costs per request: a full route table against none.

    python -m bench.edge_cost [--seconds N] [--connections N] [--json PATH]

`edge_overhead(stack)` starts one more gunicorn on the stack, of one process (the trivial JSON
view of the ceiling, with the edge router on, as in the all-in-one server) and measures it with wrk,
directly (nginx would add the same cost to both sides and hide part of the difference):
once with no enabled route, once with CloudFront's quota of 25 enabled routes that the
request passes over (the router's worst case: every pattern is tried, then the default
origin serves it). The two alternate (without, with; with, without; ...), six times each
in a full run (each order first as often), each run once the machine is quiet.
`edge_overhead_ratio` is the time per request with the routes over the time without them
(the requests a second without, over those with): 1.0 is free, the bar is 1.05. It is the
median of each pair's ratio, the two runs of a pair made one after the other: a run slowed
by something else on the machine (a vacuum after the backlog's 100,000 orders) then moves
one pair, not one side's median.

The route table is the stack's own: its enabled routes are switched off for the measurement
without routes and count among the 25; every change is undone at the end. Nothing else of
the stack runs the router (the monolith and the hot path are behind nginx's exported routes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import urllib3

from bench.stack import ROOT, Stack, machine_quiet
from bench.wrk import wrk
from procs import free_port

QUOTA = 25  # CloudFront's behaviours per distribution (EDGE_MAX_BEHAVIORS)


def _figures(runs: list[dict]) -> dict:
    rps = [row["rps"] for row in runs]
    cpu = [row["cpu_ms_per_request"] for row in runs]
    return {
        "rps": round(statistics.median(rps), 1),
        "rps_runs": [round(r, 1) for r in rps],
        "rps_spread": round(max(rps) - min(rps), 1),
        "p99_ms": round(statistics.median(row["p99_ms"] for row in runs), 2),
        # The server's own CPU per request: what other processes on the cores take does not
        # change it, so it tells the same story on a busy machine.
        "cpu_ms_per_request": round(statistics.median(cpu), 3),
        "cpu_ms_runs": [round(c, 3) for c in cpu],
        "errors": sum(row["non_2xx"] + row["socket_errors"] for row in runs),
        "quiet_wait_seconds": [row["quiet_wait_seconds"] for row in runs],
    }


def pair_ratios(top: list[dict], bottom: list[dict], key: str) -> list[float]:
    """`key` of each run in `top` over that of the run it was paired with in `bottom`."""
    return [t[key] / b[key] for t, b in zip(top, bottom, strict=True) if b[key]]


def _measured(stack: Stack, url: str, *, connections: int, seconds: int) -> dict:
    # The router's cost is a microsecond in half a millisecond: a vacuum or a checkpoint on
    # the other core moves a run's CPU per request by a third, so each run starts when the
    # machine is quiet.
    waited = machine_quiet()
    before = stack.cpu_seconds().get("edge-cost", 0.0)
    row = wrk(url, connections=connections, seconds=seconds)
    used = stack.cpu_seconds().get("edge-cost", 0.0) - before
    row["cpu_ms_per_request"] = used * 1000 / max(row["rps"] * seconds, 1.0)
    row["quiet_wait_seconds"] = waited
    return row


def _routes_fill(count: int) -> list[int]:
    """Enabled routes up to `count` (sale routes of products the request is not for); returns
    the primary keys of those added. Saved as they are: the quota counts disabled routes too,
    and the stack may have some."""
    from edge.models import Origin, Route

    hotpath = Origin.objects.get(name="hotpath")
    have = Route.objects.filter(enabled=True).count()
    added = []
    for i in range(max(0, count - have)):
        route = Route(
            name=f"edge-cost-{i:02d}",
            pattern=f"/shop/rods/sale-product-{i:02d}/*",
            origin=hotpath,
            position=10_000 + i,
            enabled=True,
        )
        route.save()
        added.append(route.pk)
    return added


def _match_cost_us(routes: list, *, path: str = "/ceiling", times: int = 20_000) -> float:
    """The router's own decision for `path`, in microseconds (best of three rounds): what the
    route table adds to a request, without the noise of a server on shared cores."""
    import time

    from edge.route_index import RouteIndex

    index = RouteIndex(routes)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(times):
            index.decide(path, now=0.0, cookies={}, headers={}, canary_secret="")
        best = min(best, (time.perf_counter() - started) / times * 1e6)
    return round(best, 2)


def edge_overhead(
    stack: Stack, *, seconds: int = 5, connections: int = 16, repetitions: int = 6, routes: int = QUOTA
) -> dict:
    """The ceiling view's requests a second through the edge middleware without routes and
    with `routes` enabled routes, medians of `repetitions` wrk runs each, and their ratio.

    Keys: `edge_overhead_ratio`, `edge_rps_no_routes`, `edge_rps_routes`; for each side
    (`edge_no_routes`, `edge_with_routes`) its runs, spread (max - min), p99 and the server's
    CPU per request, whose ratio is `edge_overhead_cpu_ratio`; the router's decision alone in
    microseconds (`edge_match_us_no_routes`, `edge_match_us_routes`); `edge_routes`, `edge_wrk`."""
    from django.conf import settings

    from edge import selectors
    from edge.models import Route

    port = free_port()
    stack.ports["edge_cost"] = port
    # The default of EDGE_MAX_BEHAVIORS is the quota: a table of 25 is what a merchant can make.
    limit = getattr(settings, "EDGE_MAX_BEHAVIORS", QUOTA)
    if routes > limit:
        raise ValueError(f"{routes} routes exceed EDGE_MAX_BEHAVIORS={limit}")
    # One process: wrk's connections, made at its start, stay with the process that accepted
    # them. With two, a run whose connections nearly all went to one (it happens) ran at
    # half the rate and 1.5 times the CPU per request, whichever side it measured.
    env = {"SHOP_DEPLOYMENT": "ceiling", "EDGE_ROUTER_ENABLED": "1"}
    stack.start_gunicorn("edge-cost", "config.wsgi", port, env, workers=1)
    url = f"http://127.0.0.1:{port}/ceiling"
    enabled_before = list(Route.objects.filter(enabled=True).values_list("pk", flat=True))
    added: list[int] = []
    http = urllib3.PoolManager(retries=False, timeout=10.0)

    def settle(expected: int) -> None:
        # Every gunicorn thread sees the change at its next request; check the answer once.
        response = http.request("GET", url)
        if response.status != 200 or response.headers.get("X-Edge-Route") != "default":
            raise RuntimeError(f"the edge router did not pass {url} to the default origin ({response.status})")
        if Route.objects.filter(enabled=True).count() != expected:
            raise RuntimeError("the route table changed while it was measured")

    def side(with_routes: bool) -> None:
        nonlocal added
        Route.objects.filter(pk__in=enabled_before).update(enabled=with_routes)
        if with_routes and not added:
            added = _routes_fill(routes)
        Route.objects.filter(pk__in=added).update(enabled=with_routes)
        settle(routes if with_routes else 0)
        wrk(url, connections=connections, seconds=1)  # warm: every thread past the change

    runs: dict[bool, list[dict]] = {False: [], True: []}
    match_us_routes: float | None = None
    try:
        for rep in range(repetitions):
            # Without, with; then with, without: a drift of the machine over the measurement
            # (a vacuum, another process) weighs on both sides alike.
            for with_routes in (False, True) if rep % 2 == 0 else (True, False):
                side(with_routes)
                runs[with_routes].append(_measured(stack, url, connections=connections, seconds=seconds))
                if with_routes and match_us_routes is None:
                    match_us_routes = _match_cost_us(selectors.enabled_routes())
    finally:
        Route.objects.filter(pk__in=added).delete()
        Route.objects.filter(pk__in=enabled_before).update(enabled=True)
        stack.stop("edge-cost")
    no_routes, full = _figures(runs[False]), _figures(runs[True])
    cpu_ratios = pair_ratios(runs[True], runs[False], "cpu_ms_per_request")
    rps_ratios = pair_ratios(runs[False], runs[True], "rps")
    return {
        "edge_overhead_ratio": round(statistics.median(rps_ratios), 3) if rps_ratios else None,
        "edge_overhead_cpu_ratio": round(statistics.median(cpu_ratios), 3) if cpu_ratios else None,
        "edge_pair_cpu_ratios": [round(r, 3) for r in cpu_ratios],
        "edge_match_us_no_routes": _match_cost_us([]),
        "edge_match_us_routes": match_us_routes,
        "edge_rps_no_routes": no_routes["rps"],
        "edge_rps_routes": full["rps"],
        "edge_no_routes": no_routes,
        "edge_with_routes": full,
        "edge_routes": routes,
        "edge_wrk": {"connections": connections, "seconds": seconds, "repetitions": repetitions},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.edge_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "edge-cost")
    args = parser.parse_args(argv)
    stack = Stack(args.out.resolve())
    try:
        stack.prepare()
        os.environ.update(stack.env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        figures = edge_overhead(stack, seconds=args.seconds, connections=args.connections)
    finally:
        stack.stop_all()
    text = json.dumps(figures, indent=2, sort_keys=True)
    if args.json:
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
