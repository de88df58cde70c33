"""`python -m bench.profile`: beside py-spy's samples, the CPU each request cost each part of
the stack while wrk ran."""

from bench import profile


class _Stack:
    def __init__(self, *readings: dict[str, float]):
        self.readings = list(readings)

    def cpu_seconds(self) -> dict[str, float]:
        return self.readings.pop(0)


def test_each_part_gets_its_cpu_per_request(monkeypatch, tmp_path):
    stack = _Stack(
        {"hotpath": 10.0, "postgresql": 4.0, "redis": 1.0, "worker": 3.0},
        {"hotpath": 19.0, "postgresql": 8.5, "redis": 1.3, "worker": 9.0},
    )
    monkeypatch.setattr(profile, "_spies", lambda *args, **kwargs: [])
    monkeypatch.setattr(profile, "wrk", lambda url, **kwargs: {"rps": 1000.0, "seconds": kwargs["seconds"]})
    result = profile._profile(stack, ["1"], "http://127.0.0.1:1/", tmp_path / "raw", seconds=10, script=None)
    # 9 s of wrk at 1,000 a second: 9,000 requests.
    assert result["cpu_ms_per_request"] == {"hotpath": 1.0, "postgresql": 0.5, "redis": 0.033}


def test_no_requests_or_orders_give_no_figure_rather_than_a_division_by_zero():
    figures = profile._cpu_ms_each({"worker": 1.0}, {"worker": 2.0, "legacy": 3.0}, 0, ("worker", "legacy"), digits=2)
    assert figures == {"worker": None, "legacy": None}
