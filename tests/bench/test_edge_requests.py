"""`python -m bench.edge_requests`: the router's cost in Django's own request, the route table
full and empty, request by request; the table is left as it was found."""

import json
import statistics
import subprocess
import sys

import pytest

from edge.models import Origin, Route
from tests.conftest import ROOT
from tests.edge.conftest import ensure_origins


def _run(process_env: dict, tmp_path, **env: str) -> subprocess.CompletedProcess:
    out = tmp_path / "edge.json"
    argv = ["--pairs", "2", "--requests", "30", "--routes", "5", "--quiet-wait", "0", "--json", str(out)]
    return subprocess.run(
        [sys.executable, "-m", "bench.edge_requests", *argv],
        cwd=ROOT,
        env={**process_env, "SHOP_DEPLOYMENT": "ceiling", "EDGE_ROUTER_ENABLED": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _table() -> list[tuple[str, bool]]:
    return list(Route.objects.order_by("name").values_list("name", "enabled"))


@pytest.fixture
def sale_route(process_env) -> Route:
    ensure_origins()
    hotpath = Origin.objects.get(name="hotpath")
    Route.objects.create(name="sale", pattern="/shop/rods/muskie-casting-rod/*", origin=hotpath, position=1)
    Route.objects.create(name="old-sale", pattern="/shop/reels/old/*", origin=hotpath, position=2, enabled=False)
    return Route.objects.get(name="sale")


def test_both_sides_are_measured_and_the_table_is_left_as_it_was(process_env, sale_route, tmp_path):
    before = _table()
    done = _run(process_env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((tmp_path / "edge.json").read_text())
    assert figures["routes"] == 5 and len(figures["pair_ratios"]) == 2
    assert len(figures["us_per_request_routes"]["runs"]) == len(figures["us_per_request_no_routes"]["runs"]) == 2
    assert figures["us_per_request_routes"]["median"] > 0 and figures["us_per_request_no_routes"]["median"] > 0
    assert figures["ratio"] == pytest.approx(statistics.median(figures["pair_ratios"]), abs=1e-4)
    # The sale's route was switched off and on again, the added routes are gone.
    assert _table() == before


def test_a_process_whose_router_is_off_is_not_measured(process_env, sale_route, tmp_path):
    before = _table()
    done = _run(process_env, tmp_path, EDGE_ROUTER_ENABLED="0")
    assert done.returncode != 0
    assert "the router did not serve the ceiling as measured" in done.stderr
    assert not (tmp_path / "edge.json").exists()
    assert _table() == before
