"""Private PostgreSQL and Redis servers on free loopback ports, for drills that restart them.

The drills stop and start the database and the broker in the middle of a stampede, so they
never touch a server anybody else uses: each run gets its own PostgreSQL cluster (initdb into
a temporary folder, run as the `postgres` user because PostgreSQL refuses to run as root) and
its own Redis without persistence, both bound to 127.0.0.1 and removed at the end.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import procs
from procs import free_port

HOST = "127.0.0.1"


def _postgres_bin() -> Path:
    """The newest installed PostgreSQL's server binaries (Debian keeps them off PATH)."""
    root = Path("/usr/lib/postgresql")
    versions = sorted((p for p in root.glob("*") if (p / "bin" / "postgres").exists()), key=lambda p: int(p.name))
    if not versions:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
    return versions[-1] / "bin"


class PrivateRedis:
    """A Redis on a free loopback port, without persistence: a restart empties it."""

    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: procs.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}"

    def version(self) -> str:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
        return out.split("v=")[1].split()[0] if "v=" in out else out.strip()

    def start(self, *, timeout: float = 20.0) -> None:
        self.process = procs.start(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.root),
            ],
            name="redis",
            log=self.root / "redis.log",
        )
        procs.wait_until(
            self.ping, what=f"answer from Redis on port {self.port}", process=self.process, timeout=timeout
        )

    def ping(self) -> bool:
        done = subprocess.run(
            ["redis-cli", "-h", HOST, "-p", str(self.port), "ping"], capture_output=True, text=True, timeout=5
        )
        return done.returncode == 0 and done.stdout.strip() == "PONG"

    def flushall(self) -> None:
        subprocess.run(["redis-cli", "-h", HOST, "-p", str(self.port), "flushall"], check=True, capture_output=True)

    def stop(self) -> None:
        procs.stop(self.process, timeout=20.0)
        self.process = None

    def restart(self, *, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def pause(self, seconds: float) -> None:
        """Stops the server for `seconds` (SIGSTOP), then lets it go on: its connections stay
        open and it answers nothing meanwhile, as a hung server or a silent address does."""
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(self.process.pid, signal.SIGCONT)


class PrivatePostgres:
    """A PostgreSQL cluster of its own in a temporary folder, on a free loopback port.

    Durability is traded for speed (fsync off): the drills restart it cleanly, they never
    pull its power.
    """

    def __init__(self, root: Path):
        self.root = root
        self.bin = _postgres_bin()
        self.data = root / "data"
        self.sockets = root / "run"
        self.port = free_port()
        self.process: procs.Process | None = None
        user = pwd.getpwnam("postgres")
        self._uid, self._gid = user.pw_uid, user.pw_gid
        self.root.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        for path in (self.root, self.sockets):
            os.chown(path, self._uid, self._gid)

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@{HOST}:{self.port}"

    def _as_postgres(self) -> dict:
        # PostgreSQL refuses to run as root: its programs run as the `postgres` user.
        return {"user": self._uid, "group": self._gid, "extra_groups": [], "cwd": self.root}

    def version(self) -> str:
        return subprocess.run([self.bin / "postgres", "--version"], capture_output=True, text=True).stdout.strip()

    def init(self) -> None:
        subprocess.run(
            [
                self.bin / "initdb",
                "-D",
                self.data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            **self._as_postgres(),
        )

    def start(self, *, timeout: float = 30.0) -> None:
        self.process = procs.start(
            [
                self.bin / "postgres",
                "-D",
                self.data,
                "-p",
                str(self.port),
                "-k",
                self.sockets,
                "-c",
                f"listen_addresses={HOST}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            name="postgres",
            log=self.root / "postgres.log",
            **self._as_postgres(),
        )
        procs.wait_until(self.ready, what=f"PostgreSQL on port {self.port}", process=self.process, timeout=timeout)

    def ready(self) -> bool:
        done = subprocess.run(
            [self.bin / "pg_isready", "-q", "-h", HOST, "-p", str(self.port), "-U", "postgres"], timeout=5
        )
        return done.returncode == 0

    def createdb(self, name: str) -> None:
        subprocess.run(
            [self.bin / "createdb", "-h", HOST, "-p", str(self.port), "-U", "postgres", name],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        # SIGINT is PostgreSQL's fast shutdown: open transactions roll back, clients are cut off.
        procs.stop(self.process, sig=signal.SIGINT, timeout=30.0)
        self.process = None

    def restart(self, *, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


class PrivateServices:
    """Both servers under one temporary folder; `close()` stops them and removes it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="shop-drills-"))
        # The postgres user must be able to reach its own folder below this one.
        os.chmod(self.root, 0o755)  # noqa: S103 - a folder of sub-folders, each with its own owner
        self.redis = PrivateRedis(self.root / "redis")
        self.postgres = PrivatePostgres(self.root / "postgres")

    def start(self) -> None:
        self.redis.start()
        self.postgres.init()
        self.postgres.start()

    def close(self) -> None:
        try:
            self.postgres.stop()
        finally:
            try:
                self.redis.stop()
            finally:
                shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivateServices:
        try:
            self.start()
        except BaseException:
            self.close()  # a server that did come up, and the folder, go too
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()
