"""Fixtures shared by every app's tests: markers that skip with a reason, and real server
and worker processes (gunicorn, Celery) pointed at the test database."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import TransactionTestCase, override_settings

import procs

# The process helpers, where the tests have always imported them from.
from procs import free_port as free_port
from procs import wait_for_port as wait_for_port

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def _is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def pytest_configure(config):
    # The processes the tests start trace as deployed and store their spans; this process
    # sets no tracing up (_no_tracing_set_up_here) and, should a test do so all the same,
    # stores no spans of other tests' requests in a later test's store. The tracing tests
    # build their own providers.
    settings.TRACING_STORE = False
    TransactionTestCase._fixture_teardown = _tables_emptied


# What migrate made and no test changes: emptying them after every test with a real
# transaction would have post_migrate make them again.
KEPT_TABLES = frozenset({"django_content_type", "auth_permission", "django_migrations"})


def _tables_emptied(self: TransactionTestCase) -> None:
    """After a test with real transactions (servers, workers, threads), the database emptied
    as Django's flush empties it, but with DELETE in one transaction instead of TRUNCATE
    (which makes new files for every table: about 0.25 s for this schema's tables, against
    0.03), keeping the content types and permissions instead of deleting and re-creating
    them. Then post_migrate, as after a flush (the legacy API registers its callers' tokens
    there), without Django's receivers that make the content types and permissions again:
    those tables were kept, and their checks, app by app, took three times as long as the
    DELETEs. Sequences go on, as they do after Django's own flush here."""
    from django.contrib.auth.management import create_permissions
    from django.contrib.contenttypes.management import create_contenttypes
    from django.core.management.sql import emit_post_migrate_signal
    from django.db import connections, transaction
    from django.db.models.signals import post_migrate

    for alias in self._databases_names(include_mirrors=False):
        conn = connections[alias]
        tables = [t for t in conn.introspection.django_table_names(only_existing=True) if t not in KEPT_TABLES]
        with transaction.atomic(using=alias), conn.cursor() as cursor:
            if conn.vendor == "postgresql":
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            for table in tables:
                cursor.execute(f"DELETE FROM {conn.ops.quote_name(table)}")  # noqa: S608 (Django's own table names)
        # Connected as django.contrib.auth's and contenttypes' apps connect them, again after.
        post_migrate.disconnect(create_permissions, dispatch_uid="django.contrib.auth.management.create_permissions")
        post_migrate.disconnect(create_contenttypes)
        try:
            emit_post_migrate_signal(verbosity=0, interactive=False, db=alias)
        finally:
            post_migrate.connect(create_contenttypes)
            post_migrate.connect(create_permissions, dispatch_uid="django.contrib.auth.management.create_permissions")


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


def test_database_url() -> str:
    """A URL for the database the tests run on, for processes started by the tests."""
    db = connection.settings_dict
    if _is_postgres():
        user = db.get("USER") or "postgres"
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


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


class ProcessGroup(procs.ProcessGroup):
    """Processes started by one test, each logging to `<tmp_path>/<name>.log`; all are stopped
    when the test ends."""

    def __init__(self, tmp_path: Path):
        super().__init__(tmp_path, cwd=ROOT)
        self.tmp_path = tmp_path

    def gunicorn(self, wsgi: str, env: dict[str, str], **options) -> str:
        """Starts `gunicorn <wsgi>:application` (on `port`, or a free one); returns its base URL."""
        return self._serve(procs.gunicorn_argv, "gunicorn", wsgi, env, **options)

    def granian(self, wsgi: str, env: dict[str, str], **options) -> str:
        """Starts `granian <wsgi>:application`, the hot path's server, as `gunicorn` does."""
        return self._serve(procs.granian_argv, "granian", wsgi, env, **options)

    def _serve(
        self,
        argv_for,
        server: str,
        wsgi: str,
        env: dict[str, str],
        *,
        workers: int = 2,
        threads: int = 4,
        port: int | None = None,
        name: str | None = None,
        config: str | None = None,
    ) -> str:
        port = port or free_port()
        extra = {"config": config} if config else {}
        argv = argv_for(BIN / server, wsgi, port=port, workers=workers, threads=threads, **extra)
        wait_for_port(port, process=self.start(argv, env, name=name or server))
        return f"http://127.0.0.1:{port}"

    def celery_worker(
        self, env: dict[str, str], *, concurrency: int = 2, queues: str | None = None, name: str = "worker"
    ) -> procs.Process:
        argv = procs.celery_worker_argv(
            BIN / "celery",
            hostname=f"{name}-{os.getpid()}@%h",
            concurrency=concurrency,
            queues=queues,
            extra=["--pool", "prefork"],
        )
        return self.start(argv, env, name=name)


@pytest.fixture
def processes(tmp_path, transactional_db) -> Iterator[ProcessGroup]:
    # transactional_db first: the processes are gone before the database is emptied after the
    # test, so none of them writes into the next test's.
    group = ProcessGroup(tmp_path)
    try:
        yield group
    finally:
        # The test is over and nothing it checks is still in flight: every process is killed
        # at once. Stopping them warmly took 3-6 s for each Celery worker (its pool's children
        # each sleep a second as they exit). What a killed worker held goes with it: its
        # connections close, and the messages it had taken but not acknowledged are dropped
        # below, so that no later test's worker is handed an order of this one.
        group.stop_all(together=True, sig=signal.SIGKILL)
        broker_unacked_forget()
        # The legacy API's slots live in the cache's Redis under a 90 s lease; a killed one
        # cannot give its slots back.
        cache.clear()


def broker_unacked_forget() -> None:
    """Drops the messages a killed worker had taken from the Redis broker without acknowledging
    them: kombu would give them back to a later worker once their visibility timeout ran out."""
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return  # the filesystem broker hands a message over whole and keeps no record of it
    from config.celery import app

    with app.connection_for_write() as connection_:
        channel = connection_.default_channel
        channel.client.delete(channel.unacked_key, channel.unacked_index_key, channel.unacked_mutex_key)


def eventually(check: Callable[[], bool], *, timeout: float = 30.0, interval: float = 0.2, message: str = "") -> None:
    """Waits until `check()` holds (a condition, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(message or f"condition not met within {timeout}s")


def fresh_process_output(script: str, *, unset: tuple[str, ...] = (), **env: str) -> str:
    """The last line `script` printed, run in a new process (nothing loaded yet) with this
    environment, `unset` names removed from it and `env` added."""
    base = {name: value for name, value in os.environ.items() if name not in unset}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def settings_of_fresh_process(expression: str, *, unset: tuple[str, ...] = (), **env: str):
    """`expression` (over `settings`) as a new process set up with this environment, `unset`
    names removed from it and `env` added, sees it: settings read from the environment."""
    script = "import django, json; django.setup(); from django.conf import settings; "
    script += f"print(json.dumps({expression}))"
    return json.loads(fresh_process_output(script, unset=unset, **env))


@pytest.fixture(autouse=True)
def _declined_cards_not_limited() -> Iterator[None]:
    """Every test's client is 127.0.0.1 and the cache outlives a test: the card-testing limits
    (shop.decline_throttle) are the business of the tests of them, which set them. Not through
    the `settings` fixture: asked for by an autouse fixture here, it would restore a test's
    settings (an unreachable cache's) only after the fixtures that clear the cache at teardown."""
    with override_settings(SHOP_DECLINES_PER_EMAIL=0, SHOP_DECLINES_PER_IP=0):
        yield


@pytest.fixture(autouse=True)
def _no_tracing_set_up_here() -> Iterator[None]:
    """The processes the tests start trace as deployed; this one traces nothing of its own. A
    test that set tracing up here (by importing an entry point that does, as config.wsgi does)
    would leave every later test's requests sampled at random, and a sampled request takes
    other ways (orders.middleware): that test fails, not one of the later ones at random."""
    from opentelemetry import trace

    before = trace.get_tracer_provider()
    yield
    if trace.get_tracer_provider() is not before:
        pytest.fail("this test set tracing up in the test process: set TRACING_ENABLED off first")


@pytest.fixture(autouse=True)
def _catalogue_pages_forgotten() -> Iterator[None]:
    """Each test starts without the catalogue pages and compiled routes an earlier test's
    rolled-back data made (their versions were never replaced: that happens on commit), nor
    a lease on a sold-out sale of an earlier test's."""
    from edge import selectors
    from orders.gate import soldout_leases_forget
    from shop import page_cache

    page_cache.pages_forget()
    selectors.routes_forget()
    soldout_leases_forget()
    yield


@pytest.fixture
def counting_clock_pinned(monkeypatch) -> float:
    """The throttles count in fixed windows of the clock (bucket = now // window), so a test
    whose requests cross a window's edge would see its count start again mid-test. Their
    modules' clock stands still for the test; everything else keeps the real one."""
    from orders import gate, throttle
    from shop import decline_throttle, window_counts

    pinned = time.time()
    clock = SimpleNamespace(time=lambda: pinned, monotonic=time.monotonic, sleep=time.sleep)
    for module in (window_counts, throttle, gate, decline_throttle):
        monkeypatch.setattr(module, "time", clock)
    return pinned


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


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


class Chromium:
    """One Chromium for a module's tests, launched again should one of them have brought it down."""

    def __init__(self, playwright):
        self.playwright = playwright
        self.launched = None

    def get(self):
        if self.launched is None or not self.launched.is_connected():
            self.launched = self.playwright.chromium.launch(
                executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
            )
        return self.launched


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    """Debian's Chromium, headless, driven by Playwright: launched once for a module's tests
    (about 0.5 s a launch), each test's pages in browser contexts of their own."""
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        # Playwright's loop runs in the tests' thread as long as the browser lasts, through the
        # module's later tests and their fixtures too (the database emptied after each): no
        # code here is async, so Django's check against ORM calls from a loop stays off meanwhile.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            held = Chromium(playwright)
            try:
                yield held
            finally:
                if held.launched is not None and held.launched.is_connected():
                    held.launched.close()


class PolicyWatchedBrowser:
    """The launched Chromium, whose every new page and context reports what the pages'
    Content-Security-Policy refused (Chromium says so on the page's console): a style or script
    a page carries inline, which the policy blocks, fails the test that met it."""

    def __init__(self, launched):
        self._launched = launched
        self.refused: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self._launched, name)

    def _watch(self, context):
        context.on("console", self._heard)
        return context

    def _heard(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.refused.append(f"{message.page.url if message.page else '?'}: {message.text}")

    def new_context(self, *args, **kwargs):
        return self._watch(self._launched.new_context(*args, **kwargs))

    def new_page(self, *args, **kwargs):
        page = self._launched.new_page(*args, **kwargs)
        self._watch(page.context)
        return page


@pytest.fixture
def browser(chromium):
    """The module's Chromium; every page and context the test opened is closed after it, so that
    no cookie, storage or cache of one test is seen by the next. A page that met a refusal of the
    Content-Security-Policy fails the test."""
    watched = PolicyWatchedBrowser(chromium.get())
    yield watched
    for context in list(watched.contexts):
        context.close()
    assert not watched.refused, "the page's Content-Security-Policy refused:\n" + "\n".join(watched.refused)


@pytest.fixture
def migrations_restored():
    """A test that migrates the database back leaves it migrated to the latest again, so the
    tests after it find every table and index the migrations make."""
    yield
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def migrate_to(targets: list[tuple[str, str]]):
    """Migrates the test database to `targets` (app, migration) and returns the executor, whose
    `loader.project_state(targets).apps` holds the models as they were there."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor
