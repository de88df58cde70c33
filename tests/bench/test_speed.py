"""Two wrk figures whose ratio is a bar are measured in turn, in rounds over each one's
concurrencies; each figure is its best concurrency's median, never one run's."""

from bench.speed import WrkTarget, wrk_best_together


def test_rounds_alternate_and_each_figure_is_its_best_concurrency_s_median():
    calls = []
    # The machine slows down over the measurement: a run made later is slower, whatever it measures.
    speed = {"a": {4: 100.0, 16: 300.0}, "b": {8: 200.0, 32: 150.0}}

    def run(target: WrkTarget, connections: int, seconds: int) -> dict:
        calls.append((target.url, connections))
        rps = speed[target.url][connections] * (1 - 0.05 * len(calls))
        return {"connections": connections, "rps": rps, "p99_ms": float(len(calls)), "non_2xx": 0}

    targets = {"soldout": WrkTarget("a", connections=(4, 16)), "ceiling": WrkTarget("b", connections=(8, 32))}
    figures = wrk_best_together(targets, seconds=1, times=3, run=run)

    # Three rounds, each over both targets' concurrencies in turn.
    assert calls == [("a", 4), ("a", 16), ("b", 8), ("b", 32)] * 3
    soldout, ceiling = figures["soldout"], figures["ceiling"]
    assert soldout["connections"] == 16 and ceiling["connections"] == 8
    assert soldout["values"] == [270.0, 210.0, 150.0]  # calls 2, 6 and 10
    assert soldout["median"] == 210.0 and (soldout["min"], soldout["max"]) == (150.0, 270.0)
    assert ceiling["values"] == [170.0, 130.0, 90.0]  # calls 3, 7 and 11
    assert ceiling["median"] == 130.0
    assert [row["connections"] for row in soldout["sweep"]] == [4, 16]
    assert [row["rps"] for row in soldout["sweep"]] == [75.0, 210.0]  # each concurrency's median
    assert soldout["p99_ms"] == 6.0  # the median of its three runs' p99s (2, 6, 10)


def test_one_lucky_run_does_not_choose_the_concurrency():
    """A concurrency whose first run was the fastest of all, but whose others were slow, loses
    to one that is faster in the median."""
    rates = {("a", 4): [500.0, 200.0, 210.0], ("a", 64): [400.0, 390.0, 410.0]}
    seen: dict = {}

    def run(target: WrkTarget, connections: int, seconds: int) -> dict:
        i = seen[connections] = seen.get(connections, -1) + 1
        return {"connections": connections, "rps": rates[(target.url, connections)][i], "p99_ms": 1.0, "non_2xx": 0}

    figure = wrk_best_together({"ceiling": WrkTarget("a", connections=(4, 64))}, seconds=1, times=3, run=run)["ceiling"]
    assert figure["connections"] == 64 and figure["median"] == 400.0
