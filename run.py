#!/usr/bin/env python3
"""Starts the whole shop, or runs its tests, on any machine with Python 3.11+.

    python3 run.py          # the shop at http://127.0.0.1:8000 (storefront, legacy API,
                            # hot path, worker, edge routing) on SQLite and a file broker
    python3 run.py test     # the test suite (extra arguments go to pytest)

It creates `.venv` and installs requirements.txt when they are missing or have changed,
migrates, and loads the demo catalogue on first start. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
REQUIREMENTS = ROOT / "requirements.txt"
STAMP = VENV / ".requirements.sha256"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit("Python 3.11 or newer is needed.")
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if PY.exists() and STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    if not PY.exists():
        say("creating the virtualenv in .venv")
        venv.EnvBuilder(with_pip=True).create(VENV)
    say("installing requirements.txt")
    subprocess.run([PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([PY, "-m", "pip", "install", "--quiet", "-r", REQUIREMENTS], check=True)
    STAMP.write_text(digest)


def manage(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True, env=env)


def serve() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")
    say("migrating the database")
    manage("migrate", "--noinput", "-v", "0", env=env)
    manage("load_demo", "--if-empty", env=env)
    say("starting the worker and the shop at http://127.0.0.1:8000/shop/ (Ctrl-C stops both)")
    children = [
        subprocess.Popen(
            [
                VENV / "bin" / "celery",
                "-A",
                "config",
                "worker",
                "--beat",
                "--loglevel",
                "WARNING",
                "--concurrency",
                "2",
                "--without-gossip",
                "--without-mingle",
                "--schedule",
                str(ROOT / "var" / "celerybeat-schedule"),
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        ),
        subprocess.Popen(
            [PY, "manage.py", "runserver", "127.0.0.1:8000", "--noreload"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        ),
    ]

    def stop(*_):
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
    return 0


def test(args: list[str]) -> int:
    env = dict(os.environ)
    return subprocess.run([PY, "-m", "pytest", *args], cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    ensure_venv()
    if argv and argv[0] == "--setup-only":
        return 0
    if argv and argv[0] == "test":
        return test(argv[1:])
    if argv and argv[0] not in ("serve",):
        sys.exit(__doc__)
    return serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
