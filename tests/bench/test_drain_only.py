"""`python -m bench.stampede --drain-only`: the first stampede's drain, judged by the same books."""

from datetime import UTC, datetime, timedelta

from bench.books import drain_phases
from bench.loadgen import RunResult, Sample
from bench.phases import inflight_mean
from bench.report import BOOKS
from bench.stampede import drain_figures


def browse(*latencies: float) -> RunResult:
    return RunResult("browse", rate=1.0, duration=1.0, samples=[Sample(0.0, ms, 200) for ms in latencies])


def test_orders_in_flight_are_averaged_only_while_orders_are_queued():
    # (seconds, queue depth, legacy orders in flight); -1: the reading failed.
    timeline = [(0.25, 0, 0), (0.5, 40, 3), (0.75, 38, 2), (1.0, 30, -1), (1.25, 0, 1)]
    assert inflight_mean(timeline) == 2.5
    assert inflight_mean([(0.25, 0, 0)]) is None


def test_the_drain_is_set_against_the_calibrated_rate_and_every_book_is_reported():
    books = {"drain_rate": 15.0, "drain_window_seconds": 26.7, "accepted": 400, "complete": 400}
    books |= {"legacy_rate_all_callers": 16.5}
    books |= {"drain_rate_during_stampede": 8.0, "drain_rate_after_stampede": 19.0}
    books |= {"cores_busy_after_stampede": {"legacy": 0.95}}
    books |= {key: 0 for key in BOOKS}
    on = {"results": {"browse": browse(5.0, 9.0, 12.0)}, "timeline": [(0.25, 10, 3)], "cores": {"legacy": 0.7}}
    figures = drain_figures(legacy_rate=20.0, idle=browse(4.0, 6.0), on=on, books=books)
    assert figures["drain_rate_vs_capacity"] == 0.75
    assert figures["legacy_busy_vs_capacity"] == 0.825  # the storefront's checkouts counted too
    assert (figures["browse_p99_ms_idle"], figures["browse_p99_ms_stampede"]) == (6.0, 12.0)
    assert figures["legacy_inflight_mean"] == 3.0
    assert set(BOOKS) <= set(figures) and figures["cores_busy"] == {"legacy": 0.7}
    # Each phase against the same calibrated rate, and the cores after the load beside them.
    assert figures["drain_during_stampede_vs_capacity"] == 0.4
    assert figures["drain_after_stampede_vs_capacity"] == 0.95
    assert figures["cores_busy_after_stampede"] == {"legacy": 0.95}


START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def test_the_drain_is_split_at_the_end_of_the_stampedes_load():
    # Accepted in the first two seconds; the load ends at 10 s. Four orders placed by then
    # (over 10 s from the first acceptance), six in the 3 s after it.
    orders = [(at(i * 0.2), at(done)) for i, done in enumerate([2, 4, 6, 10, 10.5, 11, 11.5, 12, 12.5, 13])]
    phases = drain_phases(orders, stampede_end=at(10))
    assert phases["drain_orders_during_stampede"] == 4
    assert phases["drain_rate_during_stampede"] == 0.4
    assert phases["drain_rate_after_stampede"] == 2.0
    assert (phases["drain_seconds_during_stampede"], phases["drain_seconds_after_stampede"]) == (10.0, 3.0)


def test_a_queue_emptied_before_the_load_ended_has_no_after_and_its_window_ends_at_the_last_order():
    orders = [(at(0), at(1)), (at(0.5), at(2)), (at(1), at(4))]
    phases = drain_phases(orders, stampede_end=at(20))
    assert phases["drain_rate_during_stampede"] == 0.75  # 3 orders over 4 s, not over 20
    assert phases["drain_rate_after_stampede"] is None
    assert drain_phases([], stampede_end=at(20))["drain_rate_during_stampede"] is None
