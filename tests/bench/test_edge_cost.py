"""The edge's cost is the median of paired runs' ratios: one run slowed by something else on
the machine moves its pair, not the figure."""

import statistics

import pytest

from bench.edge_cost import pair_ratios


def _runs(cpu: list[float]) -> list[dict]:
    return [{"cpu_ms_per_request": c, "rps": 1 / c} for c in cpu]


def test_a_slowed_run_moves_its_pair_not_the_figure():
    # The routes cost 1 %; the machine drifted between pairs (each pair was run back to back),
    # and the first run without routes was slowed to half speed by something else.
    base = [0.40, 0.30, 0.50, 0.32, 0.48, 0.34]
    without = _runs([0.80, *base[1:]])
    with_routes = _runs([b * 1.01 for b in base])
    assert statistics.median(pair_ratios(with_routes, without, "cpu_ms_per_request")) == pytest.approx(1.01)
    assert statistics.median(pair_ratios(without, with_routes, "rps")) == pytest.approx(1.01)


def test_a_pair_without_a_figure_is_left_out():
    bottom = [{"cpu_ms_per_request": 0}, {"cpu_ms_per_request": 0.25}]
    assert pair_ratios(_runs([0.4, 0.5]), bottom, "cpu_ms_per_request") == [2.0]
