"""Two wrk figures whose ratio is a bar are measured in turn: each sweeps its concurrencies,
then their repetitions alternate at each one's best concurrency."""

from bench.speed import WrkTarget, wrk_best_together


def test_repetitions_alternate_and_each_figure_is_its_own_median():
    calls = []
    # The machine slows down over the measurement: a run made later is slower, whatever it measures.
    speed = {"a": {4: 100.0, 16: 300.0}, "b": {8: 200.0, 32: 150.0}}

    def run(target: WrkTarget, connections: int, seconds: int) -> dict:
        calls.append((target.url, connections))
        rps = speed[target.url][connections] * (1 - 0.05 * len(calls))
        return {"connections": connections, "rps": rps, "p99_ms": float(len(calls)), "non_2xx": 0}

    targets = {"soldout": WrkTarget("a", connections=(4, 16)), "ceiling": WrkTarget("b", connections=(8, 32))}
    figures = wrk_best_together(targets, seconds=1, times=3, run=run)

    # Both sweeps first, then three fresh runs at the best concurrency of each, in turn: the
    # sweep's best run (the highest of several) is not one of them.
    assert calls == [("a", 4), ("a", 16), ("b", 8), ("b", 32), *[("a", 16), ("b", 8)] * 3]
    soldout, ceiling = figures["soldout"], figures["ceiling"]
    assert soldout["connections"] == 16 and ceiling["connections"] == 8
    assert soldout["values"] == [225.0, 195.0, 165.0]
    assert soldout["median"] == 195.0 and (soldout["min"], soldout["max"]) == (165.0, 225.0)
    assert ceiling["values"] == [140.0, 120.0, 100.0]
    assert ceiling["median"] == 120.0
    assert [row["connections"] for row in soldout["sweep"]] == [4, 16]
    assert [row["rps"] for row in soldout["sweep"]] == [95.0, 270.0]
    assert soldout["p99_ms"] == 7.0  # the median of its three runs' p99s (5, 7, 9)
