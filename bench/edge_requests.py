"""The edge router's cost per request without a server: Django's whole request for the
ceiling's trivial view, with the route table full and with none, in one process.

    python -m bench.edge_requests [--pairs N] [--requests N] [--routes N] [--quiet-wait S] [--json PATH]

Run in a process of the ceiling's deployment with the router on (SHOP_DEPLOYMENT=ceiling,
EDGE_ROUTER_ENABLED=1, as `bench.edge_cost` starts it), against the stack's database and
cache. The route table is switched to `--routes` enabled routes that the request passes over,
and to none, and the router compiles each as it does after any change. Then it calls the WSGI
application gunicorn would call, with the request wrk sends (plus an unsampled trace header,
as the edge's requests carry), the router holding one compiled table or the other, request
by request, and takes this thread's CPU time for each request: the middlewares, the router
(its routes' version read from the cache, the match) and the view, without the server's
sockets and parsing, which cost both sides alike. In each of `--pairs` pairs each side gets
`--requests` requests, and `ratio` is the median of the pairs' ratios of CPU per request,
with routes over without.

The difference is a microsecond or two in a request of several hundred. Through a server it
is lost in the machine's noise, and so it is between blocks of requests in one thread: one
block's CPU per request read 636 µs, the next 898, on the same side. Taken request by
request, the two sides see the same machine."""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

from bench.cli import figures_print

# An unsampled request as the edge mints it (root, parent, decision), as 99 in 100 of them
# arrive: none is traced on either side.
TRACE = "Root=1-5f84c7a1-0123456789abcdef01234567;Parent=89abcdef01234567;Sampled=0"
WARM_REQUESTS = 200


def _environ() -> dict:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/ceiling",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_X_AMZN_TRACE_ID": TRACE,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def serve(application, count: int = 1) -> tuple[float, str, dict]:
    """`count` requests for the ceiling view; this thread's CPU seconds for them, and the
    last answer's status line and headers."""
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, dict(headers)

    started = time.thread_time()
    for _ in range(count):
        result = application(_environ(), start_response)
        try:
            b"".join(result)
        finally:
            result.close()
    return time.thread_time() - started, answer.get("status", ""), answer.get("headers", {})


def _compiled_from_table(application, switch, *, with_routes: bool, expected: int):
    """The router's compiled routes once the table is switched, as a request compiles them."""
    from edge import selectors

    switch(with_routes)
    _, status, headers = serve(application, WARM_REQUESTS)
    compiled = selectors.routes_compiled()
    if not status.startswith("200") or headers.get("X-Edge-Route") != "default" or len(compiled) != expected:
        raise RuntimeError(f"the router did not serve the ceiling as measured: {status}, {len(compiled)} routes")
    return compiled


def measure(*, pairs: int, requests: int, routes: int, quiet_wait: float = 10.0) -> dict:
    from bench.edge_cost import routes_switchable
    from bench.host import machine_quiet
    from config.wsgi import application
    from edge import selectors
    from edge.route_version import routes_version

    runs: dict[bool, list[float]] = {False: [], True: []}
    with routes_switchable(routes) as switch:
        full = _compiled_from_table(application, switch, with_routes=True, expected=routes)
        empty = _compiled_from_table(application, switch, with_routes=False, expected=0)
        version = routes_version()
        for pair in range(pairs):
            machine_quiet(timeout=quiet_wait)
            spent = {False: 0.0, True: 0.0}
            for i in range(2 * requests):
                with_routes = (i + pair) % 2 == 1
                # The router's compiled routes for the current version, as it keeps them
                # between requests: one table or the other, request by request, so that the
                # machine's drift weighs on both sides alike.
                selectors._compiled = (version, full if with_routes else empty)
                seconds, _, _ = serve(application)
                spent[with_routes] += seconds
            for key in runs:
                runs[key].append(spent[key] * 1e6 / requests)
        selectors.routes_forget()
    ratios = [with_ / without for with_, without in zip(runs[True], runs[False], strict=True)]

    def side(key: bool) -> dict:
        return {"median": round(statistics.median(runs[key]), 2), "runs": [round(v, 2) for v in runs[key]]}

    return {
        "ratio": round(statistics.median(ratios), 4),
        "pair_ratios": [round(r, 4) for r in ratios],
        "us_per_request_no_routes": side(False),
        "us_per_request_routes": side(True),
        "pairs": pairs,
        "requests": requests,
        "routes": routes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.edge_requests", description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--routes", type=int, default=25)
    parser.add_argument("--quiet-wait", type=float, default=10.0, help="at most this long for a quiet machine")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    figures = measure(pairs=args.pairs, requests=args.requests, routes=args.routes, quiet_wait=args.quiet_wait)
    figures_print(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
