"""The stampede repeated in rounds: the browsing p99s and the drain are the median of the
rounds', every round's value is kept, and the books must hold in every round."""

from bench.loadgen import RunResult, Sample
from bench.rounds import ROUND_BOOKS, StampedeRound, median_round, rounds_apply, rounds_figures


def browse(*latencies: float) -> RunResult:
    return RunResult("browse", rate=1.0, duration=1.0, samples=[Sample(0.0, ms, 200) for ms in latencies])


def a_round(idle_ms: float, stampede_ms: float, drain_rate: float, *, lag: float = 0.4, **books) -> StampedeRound:
    return StampedeRound(
        idle=browse(idle_ms),
        idle_waiting={},
        on={"results": {"browse": browse(stampede_ms)}, "label": f"stampede at {stampede_ms}"},
        books={
            "drain_rate": drain_rate,
            "drain_rate_during_stampede": drain_rate,
            "drain_rate_after_stampede": None,
            "accepted": 400,
            "consumer_lag": {"inventory": {"p99_seconds": lag}, "tallies": {"p99_seconds": lag / 2}},
            "views_check": {"in_step": True},
            **{key: 0 for key in ROUND_BOOKS},
            **books,
        },
        at_edge={"browse_p99_ms_idle_at_edge": idle_ms - 2, "browse_p99_ms_stampede_at_edge": stampede_ms - 2},
    )


def test_each_figure_is_the_median_of_the_rounds_and_every_round_is_kept():
    rounds = [a_round(7.0, 18.0, 20.0, lag=0.5), a_round(9.0, 12.0, 23.0, lag=0.3), a_round(6.0, 14.0, 21.0)]
    figures = rounds_figures(rounds, legacy_rate=25.0)
    assert (figures["browse_p99_ms_idle"], figures["browse_p99_ms_stampede"]) == (7.0, 14.0)
    assert figures["drain_rate"] == 21.0 and figures["drain_rate_vs_capacity"] == 0.84
    assert figures["drain_during_stampede_vs_capacity"] == 0.84
    assert figures["drain_after_stampede_vs_capacity"] is None
    assert figures["legacy_rate_all_callers"] is None  # rounds that did not count every caller's
    assert figures["consumer_lag_p99_seconds"] == 0.4  # the slowest consumer's, the median round's
    assert (figures["browse_p99_ms_idle_at_edge"], figures["browse_p99_ms_stampede_at_edge"]) == (5.0, 12.0)
    spread = figures["spread_rounds"]
    assert spread["browse_p99_ms_stampede"] == {"min": 12.0, "max": 18.0, "values": [18.0, 12.0, 14.0]}
    assert spread["browse_ratio"]["values"] == [2.57, 1.33, 2.33]
    assert spread["drain_rate_vs_capacity"]["values"] == [0.8, 0.92, 0.84]
    assert [row["accepted"] for row in spread["stampede_rounds"]] == [400, 400, 400]
    # The bar's ratio is made of the two medians, which the ratio names beside it.
    ratio = figures["ratios_rounds"]["browse_p99_ms_stampede / browse_p99_ms_idle (the medians of the rounds)"]
    assert ratio == [2.0, 14.0, 7.0]


def test_the_round_reported_in_full_is_the_one_whose_stampede_p99_is_the_median():
    rounds = [a_round(7.0, 18.0, 20.0), a_round(9.0, 12.0, 23.0), a_round(6.0, 14.0, 21.0)]
    assert median_round(rounds) is rounds[2]
    assert median_round(rounds[:2]) is rounds[1]  # of two, the lower
    assert median_round(rounds[:1]) is rounds[0]


def test_a_book_broken_in_any_round_breaks_the_run_s_books():
    rounds = [a_round(7.0, 14.0, 20.0), a_round(7.0, 14.0, 20.0, lost=2, duplicates=1), a_round(7.0, 14.0, 20.0)]
    figures = {"lost": 0, "duplicates": 0, "books": {"lost": 0, "authorisations": 1200}, "ratios": {}, "spread": {}}
    applied = rounds_apply(figures, rounds, legacy_rate=25.0)
    assert (applied["lost"], applied["duplicates"], applied["oversold"]) == (2, 1, 0)
    assert applied["books"]["lost"] == 2 and applied["books"]["authorisations"] == 1200
    unread = [a_round(7.0, 14.0, 20.0), a_round(7.0, 14.0, 20.0, views_check={"in_step": False})]
    assert rounds_apply(figures, unread, legacy_rate=25.0)["views_check"] is False


def test_the_rounds_replace_the_single_round_s_ratios_and_keep_the_others():
    figures = {
        "ratios": {
            "accept_rps / db_accept_tps": [0.6, 1000, 1666],
            "browse_p99_ms_stampede / browse_p99_ms_idle": [3.0, 21.0, 7.0],
            "drain_rate / legacy_rate_at_capacity (the median of its calibrations)": [0.5, 12.5, 25.0],
        },
        "spread": {"accept_rps": {"values": [1, 2, 3]}},
    }
    applied = rounds_apply(figures, [a_round(7.0, 14.0, 20.0)], legacy_rate=25.0)
    assert applied["ratios"]["accept_rps / db_accept_tps"] == [0.6, 1000, 1666]
    assert "browse_p99_ms_stampede / browse_p99_ms_idle" not in applied["ratios"]
    assert not any(
        name.startswith("drain_rate / legacy_rate_at_capacity (the median of its") for name in applied["ratios"]
    )
    assert applied["ratios"]["browse_p99_ms_stampede / browse_p99_ms_idle (the medians of the rounds)"][0] == 2.0
    assert applied["spread"]["accept_rps"] == {"values": [1, 2, 3]}
    assert applied["spread"]["stampede_rounds"][0]["drain_rate_vs_capacity"] == 0.8
    assert applied["stampede_rounds"] == 1


def test_the_dashboard_s_picture_round_is_listed_and_its_books_count_but_no_median_is_taken_over_it():
    measured = [a_round(7.0, 14.0, 20.0), a_round(8.0, 12.0, 22.0), a_round(6.0, 13.0, 21.0)]
    pictured = a_round(5.0, 30.0, 15.0, lag=1.5, lost=1)
    pictured.picture = True
    rounds = [*measured, pictured]
    figures = rounds_figures(rounds, legacy_rate=25.0)
    assert (figures["browse_p99_ms_idle"], figures["browse_p99_ms_stampede"], figures["drain_rate"]) == (
        7.0,
        13.0,
        21.0,
    )
    assert figures["consumer_lag_p99_seconds"] == 0.4
    assert (figures["stampede_rounds"], figures["picture_round_apart"]) == (3, True)
    assert figures["lost"] == 1  # the books hold in every round, the pictured one too
    rows = figures["spread_rounds"]["stampede_rounds"]
    assert [row["picture"] for row in rows] == [False, False, False, True]
    assert figures["spread_rounds"]["browse_ratio"]["values"] == [2.0, 1.5, 2.17]
    assert median_round(rounds) is measured[2]
    # A single round (--quick) is pictured and is the repetition.
    assert rounds_figures([pictured], legacy_rate=25.0)["browse_p99_ms_stampede"] == 30.0
    assert median_round([pictured]) is pictured


def test_every_caller_s_orders_over_the_drain_s_window_are_the_median_of_the_rounds_against_the_capacity():
    rounds = [
        a_round(7.0, 18.0, 18.0, legacy_rate_all_callers=20.0),
        a_round(9.0, 12.0, 19.0, legacy_rate_all_callers=22.0),
        a_round(6.0, 14.0, 17.0, legacy_rate_all_callers=21.0),
    ]
    figures = rounds_figures(rounds, legacy_rate=25.0)
    assert figures["legacy_rate_all_callers"] == 21.0 and figures["legacy_busy_vs_capacity"] == 0.84
    assert figures["drain_rate_vs_capacity"] == 0.72  # the workers' own orders alone
    assert figures["spread_rounds"]["legacy_busy_vs_capacity"]["values"] == [0.8, 0.88, 0.84]
    key = "legacy_rate_all_callers / legacy_rate_at_capacity (every caller's orders over the drain's window)"
    assert figures["ratios_rounds"][key] == [0.84, 21.0, 25.0]
