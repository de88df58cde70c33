"""A setting the environment gets wrong is refused at start in one line naming the variable,
and `manage.py` prints that line, not a traceback."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT


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
        ("REDIS_TIMEOUT_SECONDS", "2s"),
        ("CONN_MAX_AGE", "forever"),
        ("SHOP_DEPLOYMENT", "storefront"),
        ("DJANGO_ENV", "prod"),
        ("LOG_LEVEL", "LOUD"),
        ("TRACING_STORE", "maybe"),
    ],
)
def test_a_bad_value_is_refused_in_one_line_naming_it(name, value, tmp_path):
    done = _manage_check(**{name: value, "VAR_DIR": str(tmp_path)})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert name in done.stderr and repr(value) in done.stderr
