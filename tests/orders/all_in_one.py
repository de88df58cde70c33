"""The all-in-one server for tests that cross origins: gunicorn serving config.wsgi (the edge
middleware, the monolith, the hot path and the legacy API), whose legacy client calls itself."""

from __future__ import annotations

from tests.conftest import free_port


def all_in_one_start(processes, env: dict[str, str], *, workers: int = 2, threads: int = 8) -> str:
    """Starts it on a port chosen first, so its LEGACY_API_URL can point at itself; returns its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**env, "SHOP_DEPLOYMENT": "all", "LEGACY_API_URL": f"{base}/legacy-api"}
    return processes.gunicorn("config.wsgi", env, workers=workers, threads=threads, port=port, name="all-in-one")
