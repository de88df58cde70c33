"""nginx in front of the stack, loaded with the routes `edge_export --target nginx` wrote."""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Iterable

from bench.stack import Stack
from edge.exporters.nginx import main_context
from procs import wait_for_url


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
    conf = (
        main_context()
        + f"""
worker_processes 1;
error_log {conf_dir}/logs/error.log warn;
pid {conf_dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  # When each request ended and how long nginx took over it: what a shopper's request cost
  # the servers, without the load generators' own waits (edge_p99_ms).
  log_format timing '$msec $request_method $uri $status $request_time';
  access_log {conf_dir}/logs/access.log timing buffer=256k flush=1s;
  client_body_temp_path {conf_dir}/body;
  proxy_temp_path {conf_dir}/proxy;
  fastcgi_temp_path {conf_dir}/fastcgi;
  uwsgi_temp_path {conf_dir}/uwsgi;
  scgi_temp_path {conf_dir}/scgi;
  include {export}/nginx-edge.conf;
{ceiling_server(stack)}
{tracing_servers(stack)}
}}
"""
    )
    (conf_dir / "nginx.conf").write_text(conf)
    argv = ["nginx", "-p", str(conf_dir), "-c", str(conf_dir / "nginx.conf")]
    if reload:
        subprocess.run([*argv, "-s", "reload"], check=True)
        time.sleep(1.0)  # the old workers finish their requests; new ones take the new routes
        return
    subprocess.run([*argv, "-t", "-q"], check=True)
    wait_for_url(stack.url("edge", "/shop/"), process=stack.start("nginx", [*argv, "-g", "daemon off;"]))


def ceiling_server(stack: Stack) -> str:
    """nginx's server for the trivial view (`ceiling_rps`). It sends the ceiling what the
    edge sends the hot path, its trace header above all: without it the ceiling's servers
    took the tracing middleware's sampler path on every request (a fifth of the trivial
    view's CPU), where the hot path's take the short path of the edge's unsampled header."""
    return _server_as_edge(
        stack, "bench_ceiling", upstream_port=stack.ports["ceiling"], listen=stack.ports["ceiling_edge"]
    )


def tracing_servers(stack: Stack) -> str:
    """nginx's two servers for tracing's cost (`bench.tracing_cost`), when the stack has their
    ports: one in front of the hot path (tracing at its default sampling), one in front of a
    second hot path with tracing off. Both send what the edge sends the hot path (the route,
    the trace header minted at the same rate), through the same plain proxy, so that the two
    sides differ only in their servers' tracing."""
    if "untraced_edge" not in stack.ports:
        return ""
    route = "\n      proxy_set_header X-Edge-Route $edge_route;"
    return "\n".join(
        _server_as_edge(
            stack, f"bench_{side}", upstream_port=stack.ports[server], listen=stack.ports[f"{side}_edge"], extra=route
        )
        for side, server in (("traced", "hotpath"), ("untraced", "hotpath_untraced"))
    )


def _server_as_edge(stack: Stack, upstream: str, *, upstream_port: int, listen: int, extra: str = "") -> str:
    secret = stack.env.get("EDGE_ORIGIN_SECRET")
    origin_verify = f"\n      proxy_set_header X-Origin-Verify {secret};" if secret else ""
    return f"""  upstream {upstream} {{ server 127.0.0.1:{upstream_port}; keepalive 32; keepalive_timeout 20s; }}
  server {{
    listen 127.0.0.1:{listen};
    location / {{
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Amzn-Trace-Id $edge_trace_id;{origin_verify}{extra}
      proxy_pass http://{upstream};
    }}
  }}"""


def edge_p99_ms(stack: Stack, paths: Iterable[str], *, since: float, until: float) -> float | None:
    """The p99 of nginx's own time (first byte read to last byte sent, in ms) for the GETs of
    `paths` that ended between `since` and `until` (time.time() instants); None if none did.
    nginx writes its log at most a second late."""
    wanted = set(paths)
    times = []
    with open(stack.out / "nginx" / "logs" / "access.log") as log:
        for line in log:
            fields = line.split()
            if len(fields) == 5 and fields[1] == "GET" and fields[2] in wanted and since <= float(fields[0]) <= until:
                times.append(float(fields[4]) * 1000)
    if not times:
        return None
    times.sort()
    return round(times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)], 1)
