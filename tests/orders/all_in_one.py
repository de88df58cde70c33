"""The all-in-one server for tests that cross origins: gunicorn serving config.wsgi (the edge
middleware, the monolith, the hot path and the legacy API), whose legacy client calls itself."""

from __future__ import annotations

from tests.conftest import BIN, free_port, wait_for_port


def all_in_one_start(processes, env: dict[str, str], *, workers: int = 2, threads: int = 8) -> str:
    """Starts it on a port chosen first, so its LEGACY_API_URL can point at itself; returns its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**env, "SHOP_DEPLOYMENT": "all", "LEGACY_API_URL": f"{base}/legacy-api"}
    argv = [str(BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    argv += ["--workers", str(workers), "--threads", str(threads), "--timeout", "60", "--graceful-timeout", "5"]
    process = processes.start(argv, env, name="all-in-one")
    wait_for_port(port, process=process)
    return base
