"""The stampede benchmark: does the sale survive on one machine?

    python -m bench.stampede [--quick] [--json PATH] [--out DIR]

It starts the production-shaped stack on loopback (see `bench.stack`), seeds a sale, and
measures, at a fixed arrival rate (open model, latency from each request's intended send
time):
1. the stampede through the strangler route: buyers of the hot product far above what the
   legacy API can take, while shoppers browse and check out other products;
2. the same stampede with the route switched off (everything through the monolith);
3. the ceiling: a trivial Django JSON view behind the same nginx and gunicorn, with wrk at
   increasing concurrency until it saturates, and the hot path's own acceptance ceiling;
4. the drain of the queue, and the books checked against PostgreSQL.
It writes the JSON figures, a Markdown report and PNG plots, and stops what it started.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import urllib3

from bench import report
from bench.loadgen import RunResult, open_loop, open_loop_apart
from bench.stack import ROOT, Stack, free_port, machine, wait_http

HOT_CATEGORY, HOT_PRODUCT = "rods", "muskie-casting-rod"
CEILING_PRODUCT = "tourney-casting-rod"  # a second hot product, for the acceptance ceiling
CARD_OK = "4242424242424242"


@dataclass(frozen=True)
class Profile:
    allocation: int
    buyer_rate: float  # buyers a second during the stampede
    stampede_seconds: float
    browse_rate: float  # shoppers' page views a second
    checkout_rate: float  # shoppers' ordinary checkouts a second, through the monolith
    idle_seconds: float
    wrk_seconds: int
    wrk_connections: tuple[int, ...]
    calibrate_seconds: float
    drain_timeout: float


# Buyers arrive at two to three times what the legacy API can place (it manages 21 to 27
# orders a second here, with its whole capacity) and well below what the hot path accepts
# (300 to 460 a second on 2 cores), so what is measured is the shop, not a queue at its door.
QUICK = Profile(80, 60, 6, 8, 1, 4, 3, (8, 32), 3, 60)
FULL = Profile(400, 60, 20, 12, 2, 20, 8, (4, 16, 64, 128), 8, 150)


class Interrupted(Exception):
    pass


# --- requests ----------------------------------------------------------------------------


def _buyer_send(base: str, run: str, product_path: str, pool: urllib3.PoolManager, i: int) -> tuple[int, bytes]:
    body = json.dumps(
        {
            "quantity": 1,
            "customer": {"name": f"Buyer {i}", "email": f"buyer{i}.{run}@example.com"},
            "payment": {"card_number": CARD_OK},
        }
    )
    response = pool.request(
        "POST",
        f"{base}{product_path}orders",
        body=body,
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": f"{run}-{i}",
            # Each buyer is another client to the throttle (the header, not an address).
            "X-Forwarded-For": f"198.51.{(i >> 8) & 255}.{i & 255}",
        },
    )
    return response.status, response.data


def _browse_send(base: str, paths: list[str], pool: urllib3.PoolManager, i: int) -> tuple[int, bytes]:
    response = pool.request("GET", base + paths[i % len(paths)], preload_content=True)
    return response.status, b""


def _checkout_send(
    base: str, run: str, product_paths: list[str], pool: urllib3.PoolManager, i: int
) -> tuple[int, bytes]:
    return _buyer_send(base, run, product_paths[i % len(product_paths)], pool, i)


# The requests are partials of module functions, so that a load generator of its own (another
# process, see `open_loop_apart`) can be given them.
def _buyer_request(base: str, run: str, *, product_path: str):
    return functools.partial(_buyer_send, base, run, product_path)


def _browse_request(base: str, paths: list[str]):
    return functools.partial(_browse_send, base, paths)


def _checkout_request(base: str, run: str, product_paths: list[str]):
    """Ordinary shoppers who buy other products, answered by the monolith."""
    return functools.partial(_checkout_send, base, run, product_paths)


# --- phases ------------------------------------------------------------------------------


class Sampler(threading.Thread):
    """Samples the queue depth and the legacy API's orders in flight four times a second."""

    def __init__(self, stack: Stack):
        super().__init__(daemon=True)
        self.stack = stack
        self.stop = threading.Event()
        self.rows: list[tuple[float, int, int]] = []
        self.http = urllib3.PoolManager(retries=False, timeout=2.0)
        self.start_time = time.monotonic()

    def run(self) -> None:
        import redis

        broker = redis.Redis.from_url(self.stack.env["CELERY_BROKER_URL"])
        while not self.stop.wait(0.25):
            try:
                depth = int(broker.llen("celery"))
            except Exception:
                depth = -1
            try:
                stats = json.loads(self.http.request("GET", self.stack.url("legacy", "/legacy-api/stats")).data)
                inflight = int(stats.get("inflight", 0))
            except Exception:
                inflight = -1
            self.rows.append((time.monotonic() - self.start_time, depth, inflight))


def legacy_stats(stack: Stack) -> dict:
    http = urllib3.PoolManager(retries=False, timeout=5.0)
    return json.loads(http.request("GET", stack.url("legacy", "/legacy-api/stats")).data)


def legacy_reset(stack: Stack) -> None:
    urllib3.PoolManager(retries=False, timeout=5.0).request("POST", stack.url("legacy", "/legacy-api/stats/reset"))


def warm_up(stack: Stack) -> None:
    """A few seconds of every kind of request, so that no measurement pays for the servers'
    first connections (database, Redis, upstream keep-alive) and cold code paths."""
    edge = stack.url("edge", "")
    paths = ["/shop/", "/shop/reels/", "/shop/reels/spinning-reel/", f"/shop/{HOT_CATEGORY}/{HOT_PRODUCT}/"]
    open_loop("warm-up", _browse_request(edge, paths), rate=40, duration=3, threads=16)
    # Real orders, for the second hot product: every thread of the hot path opens its
    # connections; the workers place them before anything is measured.
    orders = _buyer_request(edge, f"warm{int(time.time())}", product_path=f"/shop/rods/{CEILING_PRODUCT}/")
    open_loop("warm-up orders", orders, rate=20, duration=2, threads=8)
    import redis

    broker = redis.Redis.from_url(stack.env["CELERY_BROKER_URL"])
    deadline = time.monotonic() + 20
    while broker.llen("celery") and time.monotonic() < deadline:
        time.sleep(0.2)


def calibrate_legacy(stack: Stack, profile: Profile) -> float:
    """The most orders a second the legacy API completes, called with exactly its capacity."""
    capacity = stack.settings.legacy_capacity
    done = []
    stop = time.monotonic() + profile.calibrate_seconds

    def client(n: int) -> None:
        pool = urllib3.PoolManager(retries=False, timeout=30.0)
        i = 0
        while time.monotonic() < stop:
            i += 1
            body = {
                "reference": f"calibrate-{n}-{i}",
                "customer": {"name": "Calibration", "email": "calibrate@example.com"},
                "lines": [{"product": "spinning-reel", "quantity": 1}],
                "payment": {"card_number": CARD_OK},
            }
            response = pool.request(
                "POST",
                stack.url("legacy", "/legacy-api/orders"),
                body=json.dumps(body),
                headers={"Content-Type": "application/json"},
            )
            if response.status in (200, 201):
                done.append(time.monotonic())

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(capacity)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(done) / (time.monotonic() - started)


def wrk(url: str, *, connections: int, seconds: int, script: Path | None = None) -> dict:
    """Runs wrk; returns requests a second, p99 latency (ms) and non-2xx/3xx counts."""
    argv = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        argv += ["-s", str(script)]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "connections": connections,
        "rps": rps,
        "p99_ms": p99_ms,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


WRK_ORDER_SCRIPT = """
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  thread_id = tid
end
request = function()
  counter = counter + 1
  local n = thread_id * 10000000 + counter
  local body = '{"quantity": 1, "customer": {"name": "Ceiling", "email": "ceiling' .. n ..
    '@example.com"}, "payment": {"card_number": "4242424242424242"}}'
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "RUN-" .. n,
    ["X-Forwarded-For"] = "203.0." .. (n % 250) .. "." .. (math.floor(n / 250) % 250),
  }, body)
end
"""


def stampede(stack: Stack, profile: Profile, *, label: str, run: str) -> dict:
    """Buyers at a fixed rate for the hot product, with browsing and ordinary checkouts."""
    edge = stack.url("edge", "")
    browse_paths = [
        "/shop/",
        "/shop/reels/",
        "/shop/reels/spinning-reel/",
        "/shop/hard-baits/",
        "/shop/hard-baits/square-bill-silent-crankbait/",
        "/shop/rods/tourney-casting-rod/",
        "/shop/reels/baitcasting-reel/",
    ]
    legacy_reset(stack)
    sampler = Sampler(stack)
    sampler.start()
    results: dict[str, RunResult] = {}
    cpu_before, started = stack.cpu_seconds(), time.monotonic()

    def go(name, request, rate, **kwargs):
        # Each stream of requests has a process of its own: a hundred buyer threads sharing one
        # interpreter would delay the shoppers' threads and their measured latency with them.
        results[name] = open_loop_apart(name, request, rate=rate, duration=profile.stampede_seconds, **kwargs)

    threads = [
        threading.Thread(
            target=go,
            args=(
                "buyers",
                _buyer_request(edge, run, product_path=f"/shop/{HOT_CATEGORY}/{HOT_PRODUCT}/"),
                profile.buyer_rate,
            ),
            kwargs={"threads": 96, "keep_body": True},
        ),
        threading.Thread(
            target=go, args=("browse", _browse_request(edge, browse_paths), profile.browse_rate), kwargs={"threads": 8}
        ),
        threading.Thread(
            target=go,
            args=(
                "checkout",
                _checkout_request(
                    edge, f"{run}-shopper", ["/shop/reels/spinning-reel/", "/shop/reels/baitcasting-reel/"]
                ),
                profile.checkout_rate,
            ),
            kwargs={"threads": 4},
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    cpu_after = stack.cpu_seconds()
    # Each part's share of one core over the stampede (the machine has os.cpu_count() of them).
    # A process that exits takes its count along (a PostgreSQL backend that closes): at worst
    # a part is under-counted, never below zero.
    cores = {
        name: round(max(0.0, cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0)) / elapsed, 2)
        for name in sorted(cpu_after)
    }
    stats = legacy_stats(stack)
    sampler.stop.set()
    sampler.join()
    return {"label": label, "results": results, "timeline": sampler.rows, "legacy": stats, "cores": cores}


def accepted_numbers(result: RunResult) -> list[str]:
    numbers = []
    for sample in result.samples:
        if sample.status == 202:
            try:
                numbers.append(json.loads(sample.body)["number"])
            except (ValueError, KeyError):
                numbers.append("<unreadable>")
    return numbers


# --- the books ---------------------------------------------------------------------------


def drain_and_check(stack: Stack, profile: Profile, numbers: list[str], products: list[str], *, stampede_end) -> dict:
    """Waits until every accepted order is final, then checks the books in PostgreSQL."""
    from django.db import connection
    from django.db.models import Count, Sum

    from legacy_api.models import Order, OrderLine
    from orders.models import HotOrder, OrderStatus, SaleAllocation
    from shop.models import Product

    started = time.monotonic()
    deadline = started + profile.drain_timeout
    while time.monotonic() < deadline:
        pending = HotOrder.objects.filter(number__in=numbers, status=OrderStatus.PROCESSING).count()
        if pending == 0:
            break
        time.sleep(0.5)
    connection.close()
    orders = HotOrder.objects.filter(number__in=numbers)
    found = {o.number: o for o in orders}
    complete = [o for o in found.values() if o.status == OrderStatus.COMPLETE]
    lost = [n for n in numbers if n not in found or found[n].status != OrderStatus.COMPLETE]
    duplicate_answers = len(numbers) - len(set(numbers))
    legacy_per_ref = (
        OrderLine.objects.filter(product_slug__in=products, order__reference__startswith="key-")
        .values("order__reference")
        .annotate(n=Count("order_id", distinct=True))
        .filter(n__gt=1)
        .count()
    )
    legacy_refs = set(
        Order.objects.filter(reference__in=[o.reference for o in found.values()]).values_list("reference", flat=True)
    )
    oversold = 0
    for allocation in SaleAllocation.objects.filter(product__slug__in=products):
        oversold += max(0, allocation.sold + allocation.reserved - allocation.allocated)
    oversold += Product.objects.filter(stock__lt=0).count()
    # From the first order accepted to the last one placed the queue is never empty: the
    # workers should keep the legacy API as busy as it can be for that whole time.
    first = min((o.created_at for o in complete), default=None)
    last = max((o.completed_at for o in complete if o.completed_at), default=None)
    drain_window = (last - first).total_seconds() if first and last else 0.0
    after = [o for o in complete if o.completed_at and o.completed_at > stampede_end]
    sold_units = (
        OrderLine.objects.filter(product_slug__in=products, order__reference__startswith="key-").aggregate(
            units=Sum("quantity")
        )["units"]
        or 0
    )
    return {
        "accepted": len(numbers),
        "complete": len(complete),
        "lost": len(lost),
        "lost_numbers": lost[:20],
        "duplicates": duplicate_answers + legacy_per_ref + max(0, sold_units - len(legacy_refs)),
        "legacy_orders_for_accepted": len(legacy_refs),
        "oversold": oversold,
        "drain_seconds": round(time.monotonic() - started, 2),
        "drain_window_seconds": round(drain_window, 2),
        "completed_after_stampede": len(after),
        "drain_rate": round(len(complete) / drain_window, 2) if drain_window else 0.0,
    }


# --- set-up ------------------------------------------------------------------------------


def seed(stack: Stack, profile: Profile) -> None:
    """The merchant's side: the sale's allocation and the routes, as the admin would set them."""
    from edge.models import Origin
    from orders.models import SaleAllocation
    from shop.models import Product

    for slug, allocation in ((HOT_PRODUCT, profile.allocation), (CEILING_PRODUCT, 1_000_000)):
        product = Product.objects.get(slug=slug)
        Product.objects.filter(pk=product.pk).update(stock=max(product.stock, allocation + 1000), is_active=True)
        SaleAllocation.objects.update_or_create(
            product=product, defaults={"is_hot": True, "allocated": allocation, "per_order_limit": 2}
        )
    # Ordinary shoppers and the calibration buy these through the monolith.
    Product.objects.filter(slug__in=["spinning-reel", "baitcasting-reel"]).update(stock=1_000_000)
    for name, port in (("monolith", "monolith"), ("hotpath", "hotpath"), ("legacy-api", "legacy")):
        Origin.objects.filter(name=name).update(domain="127.0.0.1", port=stack.ports[port], protocol="http")
    for name, slug in (("muskie-sale", HOT_PRODUCT), ("tourney-sale", CEILING_PRODUCT)):
        stack.manage("edge_route", "add", name, f"/shop/rods/{slug}/*", "--origin", "hotpath", "--enable", capture=True)


def route_switch(stack: Stack, *, on: bool) -> None:
    stack.manage("edge_route", "enable" if on else "disable", "muskie-sale", capture=True)


def nginx_start(stack: Stack, *, reload: bool = False) -> None:
    """Exports the routes for nginx and (re)loads them: the strangler fig's switch."""
    export = stack.out / "edge"
    stack.manage(
        "edge_export",
        "--target",
        "nginx",
        "--out",
        str(export),
        "--nginx-listen",
        f"127.0.0.1:{stack.ports['edge']}",
        capture=True,
    )
    conf_dir = stack.out / "nginx"
    (conf_dir / "logs").mkdir(parents=True, exist_ok=True)
    conf = f"""
worker_processes 1;
error_log {conf_dir}/logs/error.log warn;
pid {conf_dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {conf_dir}/body;
  proxy_temp_path {conf_dir}/proxy;
  fastcgi_temp_path {conf_dir}/fastcgi;
  uwsgi_temp_path {conf_dir}/uwsgi;
  scgi_temp_path {conf_dir}/scgi;
  include {export}/nginx-edge.conf;
  upstream bench_ceiling {{ server 127.0.0.1:{stack.ports["ceiling"]}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{stack.ports["ceiling_edge"]};
    location / {{
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_pass http://bench_ceiling;
    }}
  }}
}}
"""
    (conf_dir / "nginx.conf").write_text(conf)
    argv = ["nginx", "-p", str(conf_dir), "-c", str(conf_dir / "nginx.conf")]
    if reload:
        subprocess.run([*argv, "-s", "reload"], check=True)
        time.sleep(1.0)  # the old workers finish their requests; new ones take the new routes
        return
    subprocess.run([*argv, "-t", "-q"], check=True)
    stack._spawn("nginx", [*argv, "-g", "daemon off;"])
    wait_http(stack.url("edge", "/shop/"))


# --- main --------------------------------------------------------------------------------


def run(profile: Profile, out: Path, quick: bool) -> dict:
    stack = Stack(out)
    try:
        stack.prepare()
        stack.ports["ceiling_edge"] = free_port()
        os.environ.update(stack.env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.utils.timezone import now as django_now

        seed(stack, profile)
        stack.start_app_servers()
        nginx_start(stack)
        nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
        psql = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
        versions = machine(nginx=nginx.replace("nginx version: ", ""), postgresql=psql)
        figures: dict = {"quick": quick, "machine": versions, "settings": {**stack.settings.as_dict()}}
        figures["settings"].update(profile.__dict__)

        legacy_rate = calibrate_legacy(stack, profile)
        figures["legacy_rate_at_capacity"] = round(legacy_rate, 2)

        warm_up(stack)
        idle = open_loop_apart(
            "browse-idle",
            _browse_request(stack.url("edge", ""), ["/shop/", "/shop/reels/", "/shop/reels/spinning-reel/"]),
            rate=profile.browse_rate,
            duration=profile.idle_seconds,
            threads=8,
        )

        on = stampede(stack, profile, label="route on", run=f"on{int(time.time())}")
        numbers = accepted_numbers(on["results"]["buyers"])
        books = drain_and_check(stack, profile, numbers, [HOT_PRODUCT], stampede_end=django_now())

        route_switch(stack, on=False)
        nginx_start(stack, reload=True)
        off = stampede(stack, profile, label="route off", run=f"off{int(time.time())}")
        route_switch(stack, on=True)
        nginx_start(stack, reload=True)

        ceiling = [
            wrk(stack.url("ceiling_edge", "/ceiling"), connections=c, seconds=profile.wrk_seconds)
            for c in profile.wrk_connections
        ]
        script = out / "order.lua"
        script.write_text(WRK_ORDER_SCRIPT.replace("RUN", f"ceiling{int(time.time())}"))
        # The hot path's own cost, like the ceiling's: the workers (and the legacy API's CPU
        # they keep busy, on the same two cores) pause while it is measured; the queue holds
        # what it accepts, which is what the queue is for.
        stack.stop("worker")
        # Like the ceiling, at more than one concurrency, the best kept: as many connections as
        # the hot path has threads (2 workers x 4), and twice that.
        accept = max(
            (
                wrk(
                    stack.url("edge", f"/shop/rods/{CEILING_PRODUCT}/orders"),
                    connections=connections,
                    seconds=profile.wrk_seconds,
                    script=script,
                )
                for connections in (8, 16)
            ),
            key=lambda row: row["rps"],
        )
        figures.update(
            report.figures(
                profile=profile,
                stack=stack,
                idle=idle,
                on=on,
                off=off,
                books=books,
                ceiling=ceiling,
                accept=accept,
                legacy_rate=legacy_rate,
            )
        )
        return figures
    finally:
        stack.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stampede", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute), for CI")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out", help="report, plots and logs")
    args = parser.parse_args(argv)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    random.seed(7)
    profile = QUICK if args.quick else FULL
    started = time.monotonic()
    args.out = args.out.resolve()
    figures = run(profile, args.out, args.quick)
    figures["seconds"] = round(time.monotonic() - started, 1)
    report.write(figures, args.out)
    if args.json:
        args.json.write_text(json.dumps(report.public(figures), indent=2, sort_keys=True))
    print(report.summary(figures))
    books_ok = figures["oversold"] == 0 and figures["lost"] == 0 and figures["duplicates"] == 0
    return 0 if books_ok else 1


if __name__ == "__main__":
    sys.exit(main())
