"""The benchmark's dashboard helpers: a screenshot taken by signing in through the admin's own
form in Chromium, and what the log's consumers cost in CPU, as their runs add it up."""

from __future__ import annotations

import pytest

from bench.dashboard import consumers_cpu, consumers_cpu_reset, dashboard_screenshot, views_check
from events.services import event_append
from events.tasks import consumers_run
from tests.readmodels.conftest import settled


class _Stack:
    def __init__(self, base: str = "", env: dict | None = None):
        self.base = base
        self.env = env or {}

    def url(self, name: str, path: str = "/") -> str:
        return f"{self.base}{path}"


@pytest.mark.django_db(transaction=True)
def test_consumers_cpu_adds_up_each_consumers_runs_since_the_reset(settings):
    settings.EVENT_CONSUMERS = dict(settings.EVENT_CONSUMERS_DEFAULT)
    consumers_cpu_reset()
    assert consumers_cpu()["total_seconds"] == 0
    for n in range(200):
        event_append(
            source="legacy.stock",
            detail_type="State change Notification",
            type="STOCK",
            subtype="PRODUCT",
            status="CHANGED",
            data={"product": f"p{n % 7}", "on_hand": 10, "held": 0, "delta": -1, "held_delta": 0, "reason": "order"},
        )
    settled()
    consumers_run()
    figures = consumers_cpu()
    assert set(figures["per_consumer"]) == {"inventory", "reorders", "sales_per_minute", "tallies"}
    assert figures["per_consumer"]["inventory"] > 0
    assert figures["total_seconds"] == pytest.approx(sum(figures["per_consumer"].values()), abs=0.01)
    consumers_cpu_reset()
    assert consumers_cpu()["total_seconds"] == 0


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_screenshot_signs_in_and_saves_the_live_page(live_server, tmp_path, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    path = dashboard_screenshot(_Stack(live_server.url), tmp_path / "dashboard.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_views_check_says_whether_the_read_models_equal_a_rebuild(settings, process_env):
    from readmodels.models import InventoryLevel
    from tests.readmodels.conftest import catch_up

    settings.EVENT_CONSUMERS = dict(settings.EVENT_CONSUMERS_DEFAULT)
    event_append(
        source="legacy.stock",
        detail_type="State change Notification",
        type="STOCK",
        subtype="PRODUCT",
        status="CHANGED",
        data={"product": "rod", "on_hand": 9, "held": 0, "delta": -1, "held_delta": 0, "reason": "order"},
    )
    catch_up()
    stack = _Stack(
        env={**process_env, "EVENT_CONSUMERS": ",".join(f"{k}={v}" for k, v in settings.EVENT_CONSUMERS.items())}
    )
    assert views_check(stack)["in_step"] is True
    InventoryLevel.objects.update(on_hand=3)
    found = views_check(stack)
    assert found["in_step"] is False and "rod: live" in found["output"]
