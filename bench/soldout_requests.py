"""A sold-out answer's cost against the trivial view's without a server: Django's whole
request, in one process of the hot path's deployment, request by request.

    python -m bench.soldout_requests [--blocks N] [--requests N] [--quiet-wait S] [--json PATH]

Run with SHOP_DEPLOYMENT=hotpath against a database and cache where the benchmark's hot sale
is sold out (`python -m bench.profile` runs it so, on its stack). It calls the WSGI application
a server would call with what the edge sends (an unsampled trace header, the origin's secret):
an order to the sold-out sale, a fresh key each, and the very same request to the trivial view
(`bench.ceiling_urls`, served here before the hot path's URLs, so that a sold-out answer, not
the trivial view, pays for the one more pattern tried). A third side sends the sold-out order
through the same middlewares without the short way (`orders.middleware`), as the view answered
it before. Blocks of `--requests` requests of each side take turns, `--blocks` times, and each
side's figure is this thread's CPU per request, the median of its blocks: the middlewares, the
URL's resolution and the view, without the server's sockets and parsing, which cost each side
alike. `ratio` is the trivial view's CPU over the sold-out answer's, as `soldout_rps /
ceiling_rps` compares their rates."""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

from bench.cli import figures_print

TRACE = "Root=1-5f84c7a1-0123456789abcdef01234567;Parent=89abcdef01234567;Sampled=0"
SHORT_WAY = "orders.middleware.SoldOutAnswerMiddleware"
WARM_REQUESTS = 300


class Requests:
    """Each side's request as the edge sends it: the order script's body (bench.wrk), a fresh
    key and address each."""

    def __init__(self, orders_path: str, secret: str):
        self.orders_path, self.secret, self.sent = orders_path, secret, 0

    def environ(self, path: str) -> dict:
        self.sent += 1
        n = self.sent
        body = (
            '{"quantity": 1, "customer": {"name": "Ceiling", "email": "inproc-' + str(n) + '@example.com"}, '
            '"payment": {"card_number": "4242424242424242"}}'
        ).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_IDEMPOTENCY_KEY": f"INPROC-{time.time_ns()}-{n}",
            "HTTP_X_FORWARDED_FOR": f"203.0.{n % 250}.{n // 250 % 250}",
            "HTTP_X_FORWARDED_PROTO": "http",
            "HTTP_X_AMZN_TRACE_ID": TRACE,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if self.secret:
            environ["HTTP_X_ORIGIN_VERIFY"] = self.secret
        return environ


def serve(application, environ_of, count: int) -> tuple[float, str]:
    """`count` requests; this thread's CPU seconds for them and the last answer's status."""
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = status

    started = time.thread_time()
    for _ in range(count):
        result = application(environ_of(), start_response)
        try:
            b"".join(result)
        finally:
            result.close()
    return time.thread_time() - started, answer.get("status", "")


def _applications():
    """The hot path's WSGI application, with the trivial view's URL before its own, and the same
    without the short way."""
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings
    from django.urls import clear_url_caches

    import config.wsgi  # sets Django up, as a server's process does

    if settings.SHOP_DEPLOYMENT != "hotpath" or SHORT_WAY not in settings.MIDDLEWARE:
        raise RuntimeError("run it in a process of the hot path's deployment (SHOP_DEPLOYMENT=hotpath)")
    settings.ROOT_URLCONF = "bench.soldout_urls"
    clear_url_caches()
    with override_settings(MIDDLEWARE=[name for name in settings.MIDDLEWARE if name != SHORT_WAY]):
        whole_way = WSGIHandler()  # its middleware chain is built here, and kept
    return config.wsgi.application, whole_way


def measure(*, blocks: int, requests: int, quiet_wait: float = 10.0) -> dict:
    short_way, whole_way = _applications()  # Django set up first

    from django.conf import settings

    from bench.host import machine_quiet
    from bench.sales import HOT_CATEGORY, HOT_PRODUCT
    from orders.gate import soldout_leased
    from orders.selectors import allocation_remaining, hot_product_get

    sent = Requests(f"/shop/{HOT_CATEGORY}/{HOT_PRODUCT}/orders", getattr(settings, "EDGE_ORIGIN_SECRET", ""))
    sides = {
        "soldout": (short_way, lambda: sent.environ(sent.orders_path)),
        "soldout_whole_way": (whole_way, lambda: sent.environ(sent.orders_path)),
        "ceiling": (short_way, lambda: sent.environ("/ceiling")),
    }
    product = hot_product_get(category=HOT_CATEGORY, product=HOT_PRODUCT)
    if product is None or allocation_remaining(allocation_id=product["allocation_id"]) > 0:
        raise RuntimeError("the benchmark's hot sale has units left, or there is none: its orders would be accepted")
    expected = {"soldout": "409", "soldout_whole_way": "409", "ceiling": "200"}
    for name, (application, environ_of) in sides.items():
        _, status = serve(application, environ_of, WARM_REQUESTS)
        if not status.startswith(expected[name]):
            raise RuntimeError(f"{name}: {status!r}, not {expected[name]}")
    # Measured as a stampede meets it: the process holds the sale's sold-out lease, and a new
    # key is answered from memory.
    if not soldout_leased(allocation_id=product["allocation_id"], idempotency_key=f"INPROC-{time.time_ns()}"):
        raise RuntimeError("this process holds no sold-out lease on the benchmark's hot sale")
    runs: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for block in range(blocks):
        machine_quiet(timeout=quiet_wait)
        for name in names[block % len(names) :] + names[: block % len(names)]:
            application, environ_of = sides[name]
            seconds, _ = serve(application, environ_of, requests)
            runs[name].append(seconds * 1e6 / requests)
    medians = {name: statistics.median(values) for name, values in runs.items()}
    return {
        "us_per_request": {name: round(value, 1) for name, value in medians.items()},
        "runs": {name: [round(v, 1) for v in values] for name, values in runs.items()},
        "ratio": round(medians["ceiling"] / medians["soldout"], 3),
        "ratio_whole_way": round(medians["ceiling"] / medians["soldout_whole_way"], 3),
        "blocks": blocks,
        "requests": requests,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soldout_requests", description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--quiet-wait", type=float, default=10.0, help="at most this long for a quiet machine")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    figures_print(measure(blocks=args.blocks, requests=args.requests, quiet_wait=args.quiet_wait), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
