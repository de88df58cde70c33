#!/usr/bin/env python3
"""Starts the whole shop, or runs its tests, on any machine with Python 3.11+.

    python3 run.py [--host HOST] [--port PORT]
                            # the shop at http://127.0.0.1:8000 (storefront, legacy API,
                            # hot path, worker, edge routing) on SQLite and a file broker
    python3 run.py test     # the test suite (extra arguments go to pytest)

It creates `.venv` and installs what the shop needs (requirements.txt) when it is missing or
has changed, migrates, and loads the demo catalogue on first start; the test command also
installs what development needs (requirements-dev.txt). Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import os
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

import procs
import served
from secret_key import DEFAULT_SECRET_KEY, secret_key_weakness

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
REQUIREMENTS = ROOT / "requirements.txt"
DEV_REQUIREMENTS = ROOT / "requirements-dev.txt"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def ensure_venv(*, dev: bool) -> None:
    """The virtualenv with the shop's requirements, and with development's too when `dev`.
    Each file is installed again only when it has changed since it was last installed."""
    if sys.version_info < (3, 11):
        sys.exit("Python 3.11 or newer is needed.")
    files = [REQUIREMENTS, DEV_REQUIREMENTS] if dev else [REQUIREMENTS]
    stamp = VENV / (".requirements-dev.sha256" if dev else ".requirements.sha256")
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    if PY.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return
    if not PY.exists():
        say("creating the virtualenv in .venv")
        venv.EnvBuilder(with_pip=True).create(VENV)
    say(f"installing {files[-1].name}")
    pip = [PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", files[-1]], check=True)
    stamp.write_text(digest)
    if dev:  # requirements-dev.txt includes the shop's own: those are installed now too
        (VENV / ".requirements.sha256").write_text(hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest())


def manage(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True, env=env)


def serve_environment(*, host: str, port: int, environ: dict[str, str]) -> dict[str, str]:
    """The environment of the server's processes: what `environ` sets, and the rest defaulted."""
    env = dict(environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if not loopback(host) and not env.get("DEBUG", "").strip():
        # Django's debug page shows the settings and the environment to whoever it answers.
        env["DEBUG"] = "0"
    # Everything that calls back into this server (the storefront's and the workers' legacy
    # API client, the edge's monolith origin) follows the address it listens on; one that
    # listens on every address is called back on this machine's own.
    reach = "127.0.0.1" if host.strip("[]") in ("0.0.0.0", "::") else host  # noqa: S104 - recognised, not bound
    env.setdefault("LEGACY_API_URL", f"http://{reach}:{port}/legacy-api")
    env.setdefault("EDGE_MONOLITH_PORT", str(port))
    env.setdefault("SHOP_BASE_URL", f"http://{reach}:{port}")  # the links in the shop's emails
    # The worker's prints (its emails, on the console backend) reach the terminal, as the web
    # server's do, not its log at a level the terminal does not show.
    env.setdefault("CELERY_WORKER_REDIRECT_STDOUTS", "0")
    return env


def serve(*, host: str, port: int) -> int:
    env = serve_environment(host=host, port=port, environ=dict(os.environ))
    var_dir = Path(env.get("VAR_DIR") or ROOT / "var")
    other = served.served_pid(var_dir)
    if other is not None:
        # A second server would share the first's database file, broker and beat schedule.
        say(f"the shop already runs from {var_dir} (process {other}): stop it first, or give this one another VAR_DIR")
        return 1
    say("migrating the database")
    try:
        manage("migrate", "--noinput", "-v", "0", env=env)
        manage("load_demo", "--if-empty", env=env)
    except subprocess.CalledProcessError:
        return 1  # the command said why, in its own line above
    say(f"starting the worker and the shop at http://{host}:{port}/shop/ (Ctrl-C stops both)")
    children = procs.ProcessGroup(cwd=ROOT)  # their output goes to this terminal
    schedule = var_dir / "celerybeat-schedule"
    worker = procs.celery_worker_argv(
        VENV / "bin" / "celery", hostname="worker@localhost", loglevel="WARNING", beat_schedule=schedule
    )
    children.start(worker, env, name="worker")
    children.start([PY, "manage.py", "runserver", f"{host}:{port}", "--noreload"], env, name="runserver")

    def stop(*_):
        # Each child is asked to stop on its own (SIGTERM to it, not to its group): the worker
        # then stops its pool processes itself (a SIGTERM to the whole group would kill them
        # under it, which it reports as an error). What still runs after 10 s is killed.
        children.stop_all(together=True)

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    # Commands run in another terminal (manage.py sale open ...) find this server by it.
    try:
        with served.served_recorded(var_dir, env):
            try:
                while all(child.running for child in children.processes):
                    time.sleep(0.5)
                # A child stopped on its own (its port taken, a crash): the shop is not served.
                gone = [child.name for child in children.processes if not child.running]
            except KeyboardInterrupt:  # the children are in sessions of their own: Ctrl-C reaches only us
                return 0
            finally:
                stop()
    except served.AlreadyServed as exc:
        stop()
        say(f"{exc}: stop it first, or give this one another VAR_DIR")
        return 1
    say(f"{' and '.join(gone)} stopped: the shop is not served")
    return 1


def loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only."""
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_refused(host: str, env: dict[str, str]) -> str:
    """Why this development server must not listen on `host`, or "": served beyond this machine
    (0.0.0.0, a LAN address), its legacy API's tokens, signed order links and sessions would
    be derived from the development SECRET_KEY, which is public, so anyone who can reach it
    could mint them."""
    weakness = secret_key_weakness(env.get("SECRET_KEY") or DEFAULT_SECRET_KEY)
    if loopback(host) or not weakness:
        return ""
    return (
        f"--host {host} serves the shop to other machines, and the SECRET_KEY {weakness}: anyone "
        "who can reach it could mint its legacy API tokens and order links. Set SECRET_KEY to a long "
        "random value (and ALLOWED_HOSTS to the name they reach it by), or leave --host at 127.0.0.1"
    )


def test(args: list[str]) -> int:
    env = dict(os.environ)
    return subprocess.run([PY, "-m", "pytest", *args], cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    if argv and argv[0] == "test":
        ensure_venv(dev=True)
        return test(argv[1:])
    if argv and argv[0] == "--setup-only":
        ensure_venv(dev=True)
        return 0
    parser = argparse.ArgumentParser(
        prog="python3 run.py",
        description="Starts the whole shop.",
        # `test` is read before the parser (its arguments are pytest's): said here, or --help hides it.
        epilog="python3 run.py test [PYTEST ARGUMENTS] runs the test suite instead "
        "(requirements-dev.txt installed first).",
    )
    parser.add_argument("command", nargs="?", choices=["serve"], default="serve")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    args = parser.parse_args(argv)
    if refusal := exposure_refused(args.host, dict(os.environ)):
        say(refusal)
        return 2
    ensure_venv(dev=False)
    return serve(host=args.host, port=args.port)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
