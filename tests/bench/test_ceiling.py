"""The benchmark's ceiling (`ceiling_rps`) is the hot path's own stack with a trivial view: the
same middleware in its servers, and the same headers from nginx in front of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.nginx import ceiling_server
from bench.stack import Stack
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
