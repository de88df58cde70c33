"""Fixtures shared by every app's tests: markers that skip with a reason, and real server
and worker processes (gunicorn, Celery) pointed at the test database."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def _is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def pytest_collection_modifyitems(config, items):
    on_postgres = _is_postgres()
    has_redis = bool(settings.REDIS_URL)
    has_chromium = bool(chromium_path())
    if os.environ.get("CI_REQUIRE_ALL"):
        missing = [
            name
            for name, ok in (("PostgreSQL", on_postgres), ("Redis", has_redis), ("Chromium", has_chromium))
            if not ok
        ]
        if missing:
            raise pytest.UsageError(f"CI runs every test, but {', '.join(missing)} is not available")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://..."))
        if "redis" in item.keywords and not has_redis:
            item.add_marker(pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://..."))
        if "browser" in item.keywords and not has_chromium:
            item.add_marker(pytest.mark.skip(reason="needs Chromium: apt-get install chromium"))


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def test_database_url() -> str:
    """A URL for the database the tests run on, for processes started by the tests."""
    db = connection.settings_dict
    if _is_postgres():
        user = db.get("USER") or "postgres"
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


def stop_process(process: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@pytest.fixture
def process_env(transactional_db) -> dict[str, str]:
    """Environment for a child process: the test database, this machine's Redis, test mode."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_ENV="test",
        DATABASE_URL=test_database_url(),
        VAR_DIR=str(settings.VAR_DIR),
        PYTHONUNBUFFERED="1",
    )
    return env


class ProcessGroup:
    """Processes started by one test; all are stopped when the test ends."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.processes: list[subprocess.Popen] = []

    def start(self, argv: list[str], env: dict[str, str], *, name: str) -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        process.log_path = self.tmp_path / f"{name}.log"  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def gunicorn(
        self, wsgi: str, env: dict[str, str], *, workers: int = 2, threads: int = 4, name: str = "gunicorn"
    ) -> str:
        """Starts `gunicorn <wsgi>:application` on a free port; returns its base URL."""
        port = free_port()
        process = self.start(
            [
                str(BIN / "gunicorn"),
                f"{wsgi}:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
            ],
            env,
            name=name,
        )
        wait_for_port(port, process=process)
        return f"http://127.0.0.1:{port}"

    def celery_worker(
        self, env: dict[str, str], *, concurrency: int = 2, queues: str | None = None, name: str = "worker"
    ) -> subprocess.Popen:
        argv = [
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(concurrency),
            "--pool",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"{name}-{os.getpid()}@%h",
        ]
        if queues:
            argv += ["--queues", queues]
        return self.start(argv, env, name=name)

    def log(self, process: subprocess.Popen) -> str:
        return Path(process.log_path).read_text(errors="replace")  # type: ignore[attr-defined]

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)


@pytest.fixture
def processes(tmp_path) -> Iterator[ProcessGroup]:
    group = ProcessGroup(tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


def eventually(check: Callable[[], bool], *, timeout: float = 30.0, interval: float = 0.2, message: str = "") -> None:
    """Waits until `check()` holds (a condition, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(message or f"condition not met within {timeout}s")


@pytest.fixture(scope="session", autouse=True)
def _test_database_released(django_db_setup, django_db_blocker) -> Iterator[None]:
    """Before the test database is dropped, ends the sessions that servers, workers or threads
    started by the tests may still hold, so the drop cannot fail on them."""
    yield
    # A run of tests that never touched the database may have given it back already.
    if not _is_postgres() or not str(connection.settings_dict["NAME"]).startswith("test_"):
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def _staff_client(django_user_model, username: str, permissions):
    from django.test import Client

    user = django_user_model.objects.create_user(username, f"{username}@example.com", "a-long-test-password")
    user.is_staff = True
    user.save()
    user.user_permissions.set(permissions)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer(db, django_user_model):
    """A client signed in as staff who may look at everything in the admin and change nothing."""
    from django.contrib.auth.models import Permission

    return _staff_client(django_user_model, "viewer", Permission.objects.filter(codename__startswith="view_"))


@pytest.fixture
def nobody(db, django_user_model):
    """A client signed in as staff without a single permission."""
    return _staff_client(django_user_model, "nobody", [])
