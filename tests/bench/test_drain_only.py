"""`python -m bench.stampede --drain-only`: the first stampede's drain, judged by the same books."""

from bench.loadgen import RunResult, Sample
from bench.report import BOOKS
from bench.stampede import drain_figures, inflight_mean


def browse(*latencies: float) -> RunResult:
    return RunResult("browse", rate=1.0, duration=1.0, samples=[Sample(0.0, ms, 200) for ms in latencies])


def test_orders_in_flight_are_averaged_only_while_orders_are_queued():
    # (seconds, queue depth, legacy orders in flight); -1: the reading failed.
    timeline = [(0.25, 0, 0), (0.5, 40, 3), (0.75, 38, 2), (1.0, 30, -1), (1.25, 0, 1)]
    assert inflight_mean(timeline) == 2.5
    assert inflight_mean([(0.25, 0, 0)]) is None


def test_the_drain_is_set_against_the_calibrated_rate_and_every_book_is_reported():
    books = {"drain_rate": 15.0, "drain_window_seconds": 26.7, "accepted": 400, "complete": 400}
    books |= {key: 0 for key in BOOKS}
    on = {"results": {"browse": browse(5.0, 9.0, 12.0)}, "timeline": [(0.25, 10, 3)], "cores": {"legacy": 0.7}}
    figures = drain_figures(legacy_rate=20.0, idle=browse(4.0, 6.0), on=on, books=books)
    assert figures["drain_rate_vs_capacity"] == 0.75
    assert (figures["browse_p99_ms_idle"], figures["browse_p99_ms_stampede"]) == (6.0, 12.0)
    assert figures["legacy_inflight_mean"] == 3.0
    assert set(BOOKS) <= set(figures) and figures["cores_busy"] == {"legacy": 0.7}
