"""The benchmark's ceiling (`ceiling_rps`) is the hot path's own stack with a trivial view: the
same middleware in its servers, and the same headers from nginx in front of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.nginx import ceiling_server, tracing_servers
from bench.stack import Stack
from bench.tracing_cost import tracing_ports
from edge.exporters.nginx import _trace_lines
from tests.conftest import ROOT


def _middleware(deployment: str) -> list[str]:
    code = (
        "import json, django; django.setup(); from django.conf import settings; print(json.dumps(settings.MIDDLEWARE))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "SHOP_DEPLOYMENT": deployment}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_ceiling_runs_the_hot_paths_middleware_and_not_the_storefronts():
    ceiling = _middleware("ceiling")
    assert ceiling == _middleware("hotpath")
    # The storefront's sign-in throttle and messages, which the hot path has no use for.
    assert "axes.middleware.AxesMiddleware" in _middleware("monolith")
    assert "axes.middleware.AxesMiddleware" not in ceiling


def test_nginx_sends_the_ceiling_the_edges_trace_header_as_it_does_the_hot_path(tmp_path: Path):
    stack = Stack(tmp_path)
    stack.ports = {"ceiling": 18001, "ceiling_edge": 18002}
    server = ceiling_server(stack)
    # The header the edge's own locations send, from the variable its export defines.
    assert "proxy_set_header X-Amzn-Trace-Id $edge_trace_id;" in server
    assert any("$edge_trace_id {" in line for line in _trace_lines(0.01))
    assert "X-Origin-Verify" not in server  # no origin secret set: none is sent
    stack.env = {"EDGE_ORIGIN_SECRET": "s3cret"}
    assert "proxy_set_header X-Origin-Verify s3cret;" in ceiling_server(stack)


def test_tracings_two_sides_get_the_same_proxy_and_headers_and_differ_only_in_their_servers(tmp_path: Path):
    stack = Stack(tmp_path)
    stack.ports = {"hotpath": 18011, "ceiling": 18001, "ceiling_edge": 18002}
    assert tracing_servers(stack) == ""  # without the ports, nginx has no such servers
    tracing_ports(stack)
    stack.env = {"EDGE_ORIGIN_SECRET": "s3cret"}
    traced, untraced = tracing_servers(stack).split("\n  upstream ")
    assert f"server 127.0.0.1:{stack.ports['hotpath']};" in traced
    assert f"server 127.0.0.1:{stack.ports['hotpath_untraced']};" in untraced
    assert f"listen 127.0.0.1:{stack.ports['traced_edge']};" in traced
    assert f"listen 127.0.0.1:{stack.ports['untraced_edge']};" in untraced
    for server in (traced, untraced):
        for header in ("X-Amzn-Trace-Id $edge_trace_id", "X-Edge-Route $edge_route", "X-Origin-Verify s3cret"):
            assert f"proxy_set_header {header};" in server

    # The same lines once the names that tell the two apart are taken out.
    def same(text: str) -> str:
        for side in ("untraced", "traced"):
            text = text.replace(f"bench_{side}", "bench_side")
        for port in ("hotpath", "hotpath_untraced", "traced_edge", "untraced_edge"):
            text = text.replace(str(stack.ports[port]), "PORT")
        return text.removeprefix("  upstream ")

    assert same(traced) == same(untraced)
