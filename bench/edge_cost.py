"""What the edge middleware costs per request: a full route table against none.

    python -m bench.edge_cost [--seconds N] [--connections N] [--json PATH]

`edge_overhead(stack)` measures it two ways, with no enabled route and with CloudFront's quota
of 25 enabled routes that the request passes over (the router's worst case: every pattern is
tried, then the default origin serves it):
- without a server (`bench.edge_requests`, `edge_overhead_ratio`): the CPU time of Django's
  whole request for the ceiling's trivial view, in one process of the ceiling's settings with
  the router on, as in the all-in-one server;
- through one more gunicorn on the stack, of one process, measured with wrk directly (nginx
  would add the same cost to both sides and hide part of the difference): its requests a
  second (`edge_rps_ratio`) and its CPU per request (`edge_server_cpu_ratio`).
The two sides alternate (without, with; with, without; ...), six times each in a full run
(each order first as often), each run once the machine is quiet. Each ratio is the median of
each pair's ratio, the two runs of a pair made one after the other: a run slowed by something
else on the machine (a vacuum after the backlog's 100,000 orders) then moves one pair, not one
side's median. 1.0 is free; the bar is 1.05 on `edge_overhead_ratio`. The router's
difference is a microsecond or two in a request of about a millisecond: through a server, one
run's CPU per request moved by a fifth from the next on the same side, so only the request's
own CPU time, measured in one thread, can show it.

The route table is the stack's own: its enabled routes are switched off for the measurement
without routes and count among the 25; every change is undone at the end. Nothing else of
the stack runs the router (the monolith and the hot path are behind nginx's exported routes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import urllib3

from bench.cli import figures_print, stack_ready
from bench.host import machine_quiet
from bench.stack import BIN, ROOT, Stack
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


@contextlib.contextmanager
def routes_switchable(routes: int = QUOTA) -> Iterator[Callable[[bool], None]]:
    """Yields `switch(with_routes)`: with it, `routes` enabled routes that a request for the
    ceiling passes over (the stack's own enabled routes among them, sale routes of other
    products added up to the count); without, none enabled. Every change is undone at the end."""
    from django.conf import settings

    from edge.models import Route

    # The default of EDGE_MAX_BEHAVIORS is the quota: a table of 25 is what a merchant can make.
    limit = getattr(settings, "EDGE_MAX_BEHAVIORS", QUOTA)
    if routes > limit:
        raise ValueError(f"{routes} routes exceed EDGE_MAX_BEHAVIORS={limit}")
    enabled_before = list(Route.objects.filter(enabled=True).values_list("pk", flat=True))
    added: list[int] = []

    def switch(with_routes: bool) -> None:
        nonlocal added
        Route.objects.filter(pk__in=enabled_before).update(enabled=with_routes)
        if with_routes and not added:
            added = _routes_fill(routes)
        Route.objects.filter(pk__in=added).update(enabled=with_routes)
        if Route.objects.filter(enabled=True).count() != (routes if with_routes else 0):
            raise RuntimeError("the route table changed while it was measured")

    try:
        yield switch
    finally:
        Route.objects.filter(pk__in=added).delete()
        Route.objects.filter(pk__in=enabled_before).update(enabled=True)


def sides(repetitions: int) -> Iterator[bool]:
    """With routes or not, in the order the sides are measured: without, with; then with,
    without; ... A drift of the machine over the measurement (a vacuum, another process)
    weighs on both sides alike, and each side runs first as often."""
    for rep in range(repetitions):
        yield from (False, True) if rep % 2 == 0 else (True, False)


def _in_process(stack: Stack, *, pairs: int, requests: int, routes: int) -> dict:
    """bench.edge_requests in a process of the edge-cost server's own settings; its figures."""
    out = stack.out / "edge-requests.json"
    out.unlink(missing_ok=True)
    argv = [BIN / "python", "-m", "bench.edge_requests", "--pairs", str(pairs), "--requests", str(requests)]
    process = stack.start("edge-requests", [*argv, "--routes", str(routes), "--json", str(out)], _edge_env(stack))
    if process.wait() != 0 or not out.exists():
        raise RuntimeError(f"bench.edge_requests failed:\n{process.log()[-3000:]}")
    return json.loads(out.read_text())


def _edge_env(stack: Stack) -> dict[str, str]:
    """The ceiling's trivial view with the edge router on, as in the all-in-one server."""
    return {**stack.env, "SHOP_DEPLOYMENT": "ceiling", "EDGE_ROUTER_ENABLED": "1"}


def edge_overhead(
    stack: Stack,
    *,
    seconds: int = 5,
    connections: int = 16,
    repetitions: int = 6,
    routes: int = QUOTA,
    requests: int = 2000,
) -> dict:
    """What the edge router costs a request with `routes` enabled routes, against none.

    `edge_overhead_ratio` is measured without a server (bench.edge_requests): the CPU time of
    Django's whole request for the ceiling view, 25 routes over none, the median of
    `repetitions` pairs of `requests` requests each. Through a server it is measured too:
    the ceiling view's requests a second through one gunicorn process, medians of
    `repetitions` wrk runs each (`edge_rps_ratio`), and the server's CPU per request
    (`edge_server_cpu_ratio`).

    Other keys: for each side of the server's runs (`edge_no_routes`, `edge_with_routes`) its
    runs, spread (max - min), p99 and CPU per request; the request's own runs
    (`edge_requests`); the router's decision alone in microseconds
    (`edge_match_us_no_routes`, `edge_match_us_routes`); `edge_routes`, `edge_wrk`."""
    from edge import selectors

    port = free_port()
    stack.ports["edge_cost"] = port
    # One process: wrk's connections, made at its start, stay with the process that accepted
    # them. With two, a run whose connections nearly all went to one (it happens) ran at
    # half the rate and 1.5 times the CPU per request, whichever side it measured.
    stack.start_gunicorn("edge-cost", "config.wsgi", port, _edge_env(stack), workers=1)
    url = f"http://127.0.0.1:{port}/ceiling"
    http = urllib3.PoolManager(retries=False, timeout=10.0)

    def settle() -> None:
        # Every gunicorn thread sees the change at its next request; check the answer once.
        response = http.request("GET", url)
        if response.status != 200 or response.headers.get("X-Edge-Route") != "default":
            raise RuntimeError(f"the edge router did not pass {url} to the default origin ({response.status})")
        wrk(url, connections=connections, seconds=1)  # warm: every thread past the change

    runs: dict[bool, list[dict]] = {False: [], True: []}
    match_us_routes: float | None = None
    try:
        with routes_switchable(routes) as switch:
            for with_routes in sides(repetitions):
                switch(with_routes)
                settle()
                runs[with_routes].append(_measured(stack, url, connections=connections, seconds=seconds))
                if with_routes and match_us_routes is None:
                    match_us_routes = _match_cost_us(selectors.enabled_routes())
    finally:
        stack.stop("edge-cost")
    in_process = _in_process(stack, pairs=repetitions, requests=requests, routes=routes)
    no_routes, full = _figures(runs[False]), _figures(runs[True])
    cpu_ratios = pair_ratios(runs[True], runs[False], "cpu_ms_per_request")
    rps_ratios = pair_ratios(runs[False], runs[True], "rps")
    return {
        "edge_overhead_ratio": in_process["ratio"],
        "edge_requests": in_process,
        "edge_rps_ratio": round(statistics.median(rps_ratios), 3) if rps_ratios else None,
        "edge_server_cpu_ratio": round(statistics.median(cpu_ratios), 3) if cpu_ratios else None,
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
    with stack_ready(args.out) as stack:
        figures = edge_overhead(stack, seconds=args.seconds, connections=args.connections)
    figures_print(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
