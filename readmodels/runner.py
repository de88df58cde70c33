"""The dashboard's maker in each Celery worker: a `config.worker_loop.WorkerLoop` that looks
every DASHBOARD_SNAPSHOT_LOOP_SECONDS whether a merchant watches the live sale dashboard and
its document is due, and then makes it (`readmodels.dashboard.dashboard_snapshot_refresh`;
one worker at a time). The figures' queries then run in the workers, not in the web
processes that serve the shoppers. 0 turns it off (every fetch makes its own)."""

from __future__ import annotations

from django.conf import settings

from config.worker_loop import WorkerLoop, worker_loop_register
from readmodels.dashboard import dashboard_snapshot_refresh


class DashboardMaker(WorkerLoop):
    def step(self) -> bool:
        dashboard_snapshot_refresh()
        return False


def _maker() -> DashboardMaker | None:
    interval = settings.DASHBOARD_SNAPSHOT_LOOP_SECONDS
    return DashboardMaker(interval, name="dashboard-snapshot") if interval > 0 else None


worker_loop_register(_maker)
