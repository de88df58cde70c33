"""`python -m bench.soldout_requests`: a sold-out answer's CPU against the trivial view's, and
against the same answer without the short way, in one process of the hot path's deployment."""

import json
import statistics
import subprocess
import sys

import pytest

from orders import sales
from orders.models import HotOrder
from shop.models import Category, Product
from tests.conftest import ROOT
from tests.orders.sale_support import legacy_serve
from tests.orders.test_known_keys import sell_out

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _run(process_env: dict, tmp_path, **env: str) -> subprocess.CompletedProcess:
    out = tmp_path / "soldout.json"
    argv = ["--blocks", "3", "--requests", "20", "--quiet-wait", "0", "--json", str(out)]
    return subprocess.run(
        [sys.executable, "-m", "bench.soldout_requests", *argv],
        cwd=ROOT,
        env={**process_env, "SHOP_DEPLOYMENT": "hotpath", "EDGE_ORIGIN_SECRET": "", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _sale_open(settings, live_server):
    """The benchmark's hot product on sale, 2 units held in the stock of record."""
    legacy_serve(settings, live_server)
    rods = Category.objects.create(name="Rods", slug="rods")
    product = Product.objects.create(
        category=rods, title="Muskie Casting Rod", slug="muskie-casting-rod", price_cents=14999, stock=100
    )
    return sales.sale_open(product=product, units=2, per_order_limit=1)


@pytest.fixture
def sold_out_sale(settings, live_server):
    sell_out(_sale_open(settings, live_server))


def test_each_side_is_measured_in_turn_on_a_sold_out_sale(process_env, sold_out_sale, tmp_path):
    done = _run(process_env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((tmp_path / "soldout.json").read_text())
    assert set(figures["runs"]) == {"soldout", "soldout_whole_way", "ceiling"}
    assert all(len(runs) == 3 for runs in figures["runs"].values())
    for side, runs in figures["runs"].items():
        assert figures["us_per_request"][side] == pytest.approx(statistics.median(runs), abs=0.1)
    us = figures["us_per_request"]
    assert figures["ratio"] == pytest.approx(us["ceiling"] / us["soldout"], abs=2e-3)
    assert figures["ratio_whole_way"] == pytest.approx(us["ceiling"] / us["soldout_whole_way"], abs=2e-3)


def test_a_sale_with_units_left_is_not_measured_or_sent_an_order(process_env, settings, live_server, tmp_path):
    allocation = _sale_open(settings, live_server)
    done = _run(process_env, tmp_path)
    assert done.returncode != 0
    assert "the benchmark's hot sale has units left" in done.stderr
    assert not (tmp_path / "soldout.json").exists()
    assert not HotOrder.objects.filter(product=allocation.product).exists()


def test_a_process_of_another_deployment_is_not_measured(process_env, tmp_path):
    done = _run(process_env, tmp_path, SHOP_DEPLOYMENT="monolith")
    assert done.returncode != 0
    assert "SHOP_DEPLOYMENT=hotpath" in done.stderr
