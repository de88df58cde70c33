"""The README's first command: `python3 run.py` serves the whole shop on embedded defaults,
on the port it is given, and orders placed there complete through its own legacy API; a
command run beside it reaches that server too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid

import pytest

import procs
import served
from tests.conftest import ROOT, eventually, free_port


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except OSError:
        return 0


@pytest.mark.slow
def test_run_py_serves_the_shop_on_the_port_it_is_given(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "LEGACY_"))}
    env.update(VAR_DIR=str(tmp_path / "var"), DJANGO_ENV="development", MERCHANT_PASSWORD="a-merchant-password")
    process = procs.start(
        [sys.executable, "run.py", "--port", str(port)], env, name="run.py", log=tmp_path / "run.log", cwd=ROOT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _get(f"{base}/shop/") == 200, timeout=180, message="run.py never served /shop/")
        # The monolith's buy-now places the order with the legacy API while the buyer waits:
        # it answers 201 only if the legacy client reached this server's own port.
        request = urllib.request.Request(
            f"{base}/shop/reels/spinning-reel/orders",
            data=json.dumps(
                {
                    "quantity": 1,
                    "customer": {"name": "Ada Angler", "email": "ada@example.com"},
                    "payment": {"card_number": "4242424242424242"},
                }
            ).encode(),
            headers={"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
            assert response.status == 201
        assert body["status"] == "complete"
        assert body["number"].startswith("L")
        # A second terminal, as the README's walkthrough has it: its command names no address,
        # yet it holds the sale's units with this server's legacy API, not port 8000's.
        opened = subprocess.run(
            [sys.executable, "manage.py", "sale", "open", "muskie-casting-rod", "--units", "5", "--per-order", "1"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert opened.returncode == 0, opened.stdout + opened.stderr
        assert (tmp_path / "var" / served.SERVED_FILE).exists()
        # Started again from the same directory: refused at once, the first left serving.
        again = subprocess.run(
            [sys.executable, "run.py", "--port", str(port)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 1 and f"already runs from {tmp_path / 'var'}" in again.stdout + again.stderr
        assert served.served_pid(tmp_path / "var") == process.pid and _get(f"{base}/shop/") == 200
    finally:
        # SIGTERM to run.py alone: it stops its own children, as on a server's shutdown.
        procs.stop(process, timeout=30)
    output = process.log()
    assert not (tmp_path / "var" / served.SERVED_FILE).exists()  # stopped: commands fall back to the defaults
    assert f"http://127.0.0.1:{port}/shop/" in output
    # A clean start and stop print nothing that looks like a failure.
    for alarm in ("Traceback", "ERROR", "SecurityWarning", "No hostname was supplied"):
        assert alarm not in output, output[-3000:]


ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - the address run.py is asked for, and must refuse


@pytest.mark.parametrize("host", [ALL_INTERFACES, "192.168.1.20", "shop.lan", "::"])
def test_run_py_refuses_to_serve_other_machines_with_the_development_secret_key(tmp_path, host):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(VAR_DIR=str(tmp_path / "var"))

    done = subprocess.run(
        [sys.executable, "run.py", "--host", host, "--port", "1"], env=env, cwd=ROOT, capture_output=True, text=True
    )

    assert done.returncode == 2
    assert "SECRET_KEY" in done.stdout + done.stderr and "127.0.0.1" in done.stdout + done.stderr
    assert not (tmp_path / "var").exists()  # nothing started, nothing written


def test_run_py_help_names_the_test_command_too():
    """The README's second command: a newcomer who asks `--help` is told of it."""
    done = subprocess.run([sys.executable, "run.py", "--help"], cwd=ROOT, capture_output=True, text=True)

    assert done.returncode == 0
    assert "python3 run.py test [PYTEST ARGUMENTS] runs the test suite" in " ".join(done.stdout.split())


@pytest.mark.slow
def test_run_py_refuses_a_weak_merchant_password_in_one_line(tmp_path):
    """The admin's superuser: a password the admin itself would refuse stops the start, said in
    the command's own line, with no traceback of run.py's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "LEGACY_"))}
    env.update(VAR_DIR=str(tmp_path / "var"), DJANGO_ENV="development", MERCHANT_PASSWORD="short")

    done = subprocess.run(
        [sys.executable, "run.py", "--port", str(free_port())], env=env, cwd=ROOT, capture_output=True, text=True
    )

    assert done.returncode == 1
    said = done.stdout + done.stderr
    assert "MERCHANT_PASSWORD: This password is too short" in said and "Traceback" not in said


@pytest.mark.parametrize(
    ("host", "secret_key", "refused"),
    [
        ("127.0.0.1", "", False),
        ("localhost", "", False),
        ("::1", "", False),
        ("[::1]", "", False),
        ("127.0.0.2", "", False),
        (ALL_INTERFACES, "short", True),
        (ALL_INTERFACES, "x" * 60, True),  # fewer than 5 distinct characters
        (ALL_INTERFACES, "a-long-random-value-" * 3, False),
    ],
)
def test_only_a_strong_secret_key_lets_run_py_listen_beyond_this_machine(host, secret_key, refused):
    import run

    assert bool(run.exposure_refused(host, {"SECRET_KEY": secret_key})) is refused


@pytest.mark.parametrize(
    ("host", "given", "debug"),
    [
        ("127.0.0.1", {}, None),
        (ALL_INTERFACES, {}, "0"),
        (ALL_INTERFACES, {"DEBUG": ""}, "0"),
        ("192.168.1.20", {"DEBUG": "1"}, "1"),
    ],
)
def test_a_server_other_machines_reach_shows_no_debug_page_unless_asked(host, given, debug):
    """Django's debug page shows the settings and the environment (a database URL with its
    password) to whoever it answers: off for a server others reach, unless DEBUG is set."""
    import run

    env = run.serve_environment(host=host, port=8000, environ={"SECRET_KEY": "a-long-random-value-" * 3, **given})

    assert env.get("DEBUG") == debug


def test_a_server_on_every_address_is_called_back_on_this_machines_own():
    """The legacy API client and the emails' links follow the server's address; 0.0.0.0 is not
    one to call (nor a host the shop allows), so they use 127.0.0.1."""
    import run

    env = run.serve_environment(host=ALL_INTERFACES, port=8123, environ={})

    assert env["LEGACY_API_URL"] == "http://127.0.0.1:8123/legacy-api"
    assert env["SHOP_BASE_URL"] == "http://127.0.0.1:8123"
