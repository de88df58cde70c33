"""A setting the environment gets wrong is refused at start in one line naming the variable,
and `manage.py` prints that line, not a traceback."""

import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from tests.conftest import ROOT

GOOD_KEY = Fernet.generate_key().decode()


def _manage_check(**env: str) -> subprocess.CompletedProcess:
    import os

    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTEST_VERSION", "DJANGO_ENV")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LEGACY_CAPACITY", "four"),
        # Each started, then refused every order (503 over capacity), or failed every cache call.
        ("LEGACY_CAPACITY", "0"),
        ("REDIS_TIMEOUT_SECONDS", "2s"),
        ("REDIS_TIMEOUT_SECONDS", "0"),
        ("REDIS_TIMEOUT_SECONDS", "-1"),
        ("REDIS_TIMEOUT_SECONDS", "nan"),
        # A consumer named with no handler: it was listed, forever behind, and never ran.
        ("EVENT_CONSUMERS", "bogus"),
        ("EVENT_CONSUMERS", "inventory=readmodels.inventory.handle,tallies"),
        ("CONN_MAX_AGE", "forever"),
        ("SHOP_DEPLOYMENT", "storefront"),
        ("DJANGO_ENV", "prod"),
        ("LOG_LEVEL", "LOUD"),
        ("TRACING_STORE", "maybe"),
        ("ADMINS", "ops"),
        ("ADMINS", "Ops <ops@example.com>, oncall"),
        # The reports' sender: a mail server refuses a From it cannot read, and the report is lost.
        ("SERVER_EMAIL", "errors"),
        ("SERVER_EMAIL", "errors@example.com, oncall@example.com"),
    ],
)
def test_a_bad_value_is_refused_in_one_line_naming_it(name, value, tmp_path):
    done = _manage_check(**{name: value, "VAR_DIR": str(tmp_path)})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert name in done.stderr and repr(value) in done.stderr


@pytest.mark.parametrize("keys", ["notakey", f"{GOOD_KEY},short", f"{GOOD_KEY},{GOOD_KEY[:-2]}!="])
def test_a_card_key_fernet_cannot_read_is_refused_at_start_without_showing_it(keys, tmp_path):
    """It started, and every hot-path order was then answered 500 as its card was sealed."""
    done = _manage_check(CARD_ENCRYPTION_KEY=keys, VAR_DIR=str(tmp_path))

    assert done.returncode == 1
    assert done.stderr.strip() == (
        "manage.py: CARD_ENCRYPTION_KEY must be Fernet keys (Fernet.generate_key()), comma-separated."
    )


def test_fernet_keys_newest_first_start(tmp_path):
    other = Fernet.generate_key().decode()
    assert _manage_check(CARD_ENCRYPTION_KEY=f"{GOOD_KEY}, {other}", VAR_DIR=str(tmp_path)).returncode == 0


def test_error_reports_go_to_the_admins_the_environment_names(tmp_path):
    """Django's ADMINS had no way in from the environment: no deployment was ever sent a report."""
    import os

    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTEST_VERSION", "DJANGO_ENV")}
    environ.update(
        VAR_DIR=str(tmp_path), ADMINS="Ops <ops@example.com>, oncall@example.com", SERVER_EMAIL="errors@example.com"
    )
    script = "from django.conf import settings; print(settings.ADMINS, settings.SERVER_EMAIL)"
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    shown = done.stdout.strip().splitlines()[-1]  # after the shell's own line
    assert shown == "[('Ops', 'ops@example.com'), ('oncall@example.com', 'oncall@example.com')] errors@example.com"


def test_a_consumer_whose_handler_cannot_be_imported_is_named_in_one_line(tmp_path):
    """It was a traceback out of `events replay`."""
    import os

    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTEST_VERSION", "DJANGO_ENV")}
    environ.update(EVENT_CONSUMERS="x=no.such.module", VAR_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "manage.py", "events", "replay", "x", "--from", "1"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "CommandError: consumer 'x': cannot import 'no.such.module' (EVENT_CONSUMERS): No module named 'no'"
    )
