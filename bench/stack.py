"""Starts and stops the production-shaped stack on loopback for the benchmark and the drills.

nginx (the config `edge_export --target nginx` produced) in front of gunicorn for the
monolith and the legacy API and of granian for the hot path, Celery workers on Redis,
PostgreSQL. The stack
has a Redis of its own on a free port (the machine's Redis databases belong to whoever runs
tests beside it) and a database of its own on the machine's PostgreSQL. The legacy API's
callers get random bearer tokens, as a deployment's secrets would give them. Everything it
starts is stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

import procs
from bench import host
from bench.host import all_but_last_core, autogroup_set, ensure_services
from procs import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
# The legacy API's calling sides, each with its own token (LEGACY_API_TOKEN_<CALLER>).
LEGACY_CALLERS = ("storefront", "hotpath", "merchant")


@dataclass
class Settings:
    legacy_capacity: int = 4
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456  # OWASP's argon2id floor: m=19 MiB, t=2
    gunicorn_workers: int = 2
    gunicorn_threads: int = 4
    # One worker process more than the permits the workers get (LEGACY_CAPACITY - 1): while
    # one records an answer or claims the next order, the others keep every permit busy.
    celery_concurrency: int = 4
    # Sharing two cores, the legacy backend (which would have servers of its own) and the
    # workers (batch work) yield to the shop's web processes (nice). In the idle scheduling
    # class (`batch_idle`, Linux) they take only the time the web processes leave: a page
    # view that wakes preempts them at once, where at nice 10 it could wait out their slice.
    # BENCH_BATCH_IDLE=0 runs them at nice 10 alone, to compare.
    legacy_nice: int = 10
    worker_nice: int = 10
    # The cores the workers run on (taskset's list; "" for any): by default every core but
    # the one the legacy API is given, as if each had servers of its own. On the legacy
    # API's core the workers, in the same idle class, took a share of what the shop's
    # processes leave it. BENCH_WORKER_CPUS sets another list.
    worker_cpus: str = field(default_factory=lambda: os.environ.get("BENCH_WORKER_CPUS", all_but_last_core()))
    # The stampede's own side (the hot path's servers, and the buyers' load generator, which
    # stands in for their phones) would not share cores with the rest of the shop: during the
    # stampedes it yields to the monolith's pages, nginx and PostgreSQL when they want a core
    # (nice, not the idle class). BENCH_STAMPEDE_NICE=0 runs them as the rest, to compare.
    stampede_nice: int = field(default_factory=lambda: int(os.environ.get("BENCH_STAMPEDE_NICE", "5")))
    batch_idle: bool = field(default_factory=lambda: os.environ.get("BENCH_BATCH_IDLE", "1") != "0")
    # The kernel's session autogroups off while the stack runs (`autogroup_set`), so that
    # the priorities above hold across the stack's parts. BENCH_AUTOGROUP=1 leaves them as
    # the machine has them, to compare.
    autogroup_off: bool = field(default_factory=lambda: os.environ.get("BENCH_AUTOGROUP", "0") != "1")
    # BENCH_DATABASE lets two runs on one machine keep apart (each also has its own Redis).
    database: str = field(default_factory=lambda: os.environ.get("BENCH_DATABASE", "shop_bench"))

    @property
    def hotpath_threads(self) -> int:
        """The hot path's threads (its processes x their threads): its connections to PostgreSQL,
        the concurrency at which the database's own limit is measured."""
        return self.gunicorn_workers * self.gunicorn_threads

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Stack:
    out: Path
    settings: Settings = field(default_factory=Settings)
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    # Everything the stack starts, each logging to <out>/logs/<name>.log.
    group: procs.ProcessGroup = field(init=False)
    # The kernel's autogroup setting before the stack turned it off (restored at the end).
    autogroup_was: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.group = procs.ProcessGroup(self.out / "logs", cwd=ROOT)

    # --- set-up -------------------------------------------------------------------------
    def prepare(self) -> None:
        from bench.services import PrivateRedis

        ensure_services()
        if self.settings.autogroup_off:
            self.autogroup_was = autogroup_set(False)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "logs").mkdir(exist_ok=True)
        s = self.settings
        self.ports = {name: free_port() for name in ("edge", "monolith", "hotpath", "legacy", "ceiling")}
        subprocess.run(
            ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", s.database], check=True
        )
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", s.database], check=True)
        redis = PrivateRedis(self.out / "redis")
        redis.start()
        # Stopped with the rest, and its CPU counted as the stack's Redis.
        self.group.add(redis.process)
        self.env = self.production_env(
            database_url=f"{PG_ADMIN_URL}/{s.database}",
            redis_url=f"{redis.url}/0",
            broker_url=f"{redis.url}/1",
        )
        self.install()

    def django_setup(self) -> None:
        """Django set up in this process on the stack's environment (its database, Redis and
        settings), for the measurements that read or write the stack's data themselves."""
        os.environ.update(self.env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()

    def production_env(self, *, database_url: str, redis_url: str, broker_url: str, **extra: str) -> dict[str, str]:
        """The environment every process of the stack runs with: production settings, these
        servers, the legacy API's capacity and cost. `extra` wins over the rest."""
        s = self.settings
        var = self.out / "var"
        shutil.rmtree(var, ignore_errors=True)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "CARD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            **{f"LEGACY_API_TOKEN_{caller.upper()}": secrets.token_urlsafe(32) for caller in LEGACY_CALLERS},
            "DEBUG": "0",
            "SECURE_COOKIES": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url,
            # Each thread keeps its connection (checked before each request uses it): with an
            # age of 60 s, a stampede that began after a quiet minute reopened every server's
            # connections in its first seconds, and the other shoppers' pages waited for it.
            "CONN_MAX_AGE": "none",
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": broker_url,
            "VAR_DIR": str(var),
            "LEGACY_API_URL": f"http://127.0.0.1:{self.ports['legacy']}/legacy-api",
            "LEGACY_CAPACITY": str(s.legacy_capacity),
            "LEGACY_ARGON2_TIME_COST": str(s.argon2_time_cost),
            "LEGACY_ARGON2_MEMORY_KIB": str(s.argon2_memory_kib),
            "LOG_LEVEL": "WARNING",
            # The buyers' confirmation emails are built and sent as in a deployment, into memory:
            # there is no mail server on loopback, and the console's copies would fill the logs.
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            # Every simulated buyer comes from this one machine: the per-address throttle would
            # see one client, so the buyers' addresses travel in the forwarded header and the
            # per-address limit is lifted (the per-email limit still holds).
            "ORDERS_CLIENT_IP_HEADER": "X-Forwarded-For",
            "ORDERS_THROTTLE_PER_IP": "1000000",
            "PYTHONUNBUFFERED": "1",
            # The edge (nginx) passes the host without its port: a form posted through it, the
            # admin's sign-in, names the edge's origin.
            **({"CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{self.ports['edge']}"} if "edge" in self.ports else {}),
            **extra,
        }
        for name in ("PYTEST_VERSION", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER"):
            env.pop(name, None)
        return env

    def legacy_headers(self, caller: str = "merchant") -> dict[str, str]:
        """What a request to the legacy API sends to be let in as `caller`."""
        return {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.env[f'LEGACY_API_TOKEN_{caller.upper()}']}",
        }

    def install(self) -> None:
        """Migrates the fresh database (which registers the callers' tokens) and loads the demo shop."""
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage("collectstatic", "--noinput", "-v", "0")
        self.manage("load_demo", capture=True)

    def manage(self, *args: str, capture: bool = False) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            text=True,
            capture_output=capture,
        )
        return done.stdout if capture else ""

    # --- processes ----------------------------------------------------------------------
    @property
    def processes(self) -> dict[str, procs.Process]:
        """The stack's processes by name (the last started under each name)."""
        return {process.name: process for process in self.group.processes}

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> procs.Process:
        """Starts one part of the stack, logging to `<out>/logs/<name>.log`."""
        return self.group.start(argv, env or self.env, name=name)

    def start_gunicorn(
        self,
        name: str,
        wsgi: str,
        port: int,
        extra_env: dict[str, str] | None = None,
        *,
        cpus: str = "",
        nice: int = 0,
        workers: int | None = None,
    ) -> None:
        s = self.settings
        env = {**self.env, **(extra_env or {})}
        # `cpus` pins a server to some cores, as if it ran on machines of its own.
        pin = ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []
        pin = [*self.batch_prefix(nice), *pin]
        argv = procs.gunicorn_argv(
            BIN / "gunicorn",
            wsgi,
            port=port,
            workers=workers or s.gunicorn_workers,
            threads=s.gunicorn_threads,
            config="config/gunicorn.py",  # a worker that dies frees its legacy capacity slots at once
            extra=["--worker-class", "gthread", "--backlog", "2048", "--keep-alive", "5"],
        )
        process = self.start(name, [*pin, *argv], env)
        procs.wait_for_url(f"http://127.0.0.1:{port}/", process=process)

    def start_hot_server(self, name: str, wsgi: str, port: int, extra_env: dict[str, str] | None = None) -> None:
        """The hot path's server, granian (and the ceiling's, so that both are measured behind
        the same server): as many processes and threads as the others have, so the same
        connections to PostgreSQL."""
        s = self.settings
        argv = procs.granian_argv(
            BIN / "granian", wsgi, port=port, workers=s.gunicorn_workers, threads=s.gunicorn_threads
        )
        process = self.start(name, argv, {**self.env, **(extra_env or {})})
        procs.wait_for_url(f"http://127.0.0.1:{port}/", process=process)

    def renice(self, name: str, nice: int) -> bool:
        """Sets every thread of a part (its process group) to `nice`; False when not allowed
        (raising it back needs the privilege to)."""
        process = self.processes.get(name)
        if process is None:
            return False
        try:
            os.setpriority(os.PRIO_PGRP, process.pid, nice)
        except (PermissionError, ProcessLookupError):
            return False
        return True

    def batch_prefix(self, nice: int) -> list[str]:
        """What runs a process as batch work: at `nice`, and in the idle class where asked and
        the machine has `chrt`. Nothing for nice 0 (the shop's own web processes)."""
        if not nice:
            return []
        prefix = ["nice", "-n", str(nice)]
        if self.settings.batch_idle and shutil.which("chrt"):
            prefix = ["chrt", "--idle", "0", *prefix]
        return prefix

    def start_worker(self, name: str = "worker") -> procs.Process:
        nice = self.batch_prefix(self.settings.worker_nice)
        argv = procs.celery_worker_argv(
            BIN / "celery",
            hostname=f"{name}@bench",
            concurrency=self.settings.celery_concurrency,
            loglevel="WARNING",
            beat_schedule=self.out / "var" / "celerybeat-schedule",
            extra=["--prefetch-multiplier", "1"],
        )
        cpus = self.settings.worker_cpus
        pin = ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []
        return self.start(name, [*nice, *pin, *argv])

    def start_legacy(self) -> None:
        # The legacy backend burns CPU by design (argon2 per order). It would have servers of
        # its own: here it is given one core, so that what it burns measures its capacity and
        # not the hot path's, and it yields to the shop's processes when they need that core
        # too (nice).
        cores = os.cpu_count() or 1
        self.start_gunicorn(
            "legacy",
            "config.wsgi_legacy",
            self.ports["legacy"],
            cpus=str(cores - 1) if cores > 1 else "",
            nice=self.settings.legacy_nice,
        )

    def start_app_servers(self) -> None:
        self.start_legacy()
        self.start_gunicorn("monolith", "config.wsgi_monolith", self.ports["monolith"])
        self.start_hot_server("hotpath", "config.wsgi_hotpath", self.ports["hotpath"])
        self.start_hot_server("ceiling", "config.wsgi", self.ports["ceiling"], {"SHOP_DEPLOYMENT": "ceiling"})
        self.start_worker()

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stops one part (SIGKILL: its whole process group at once, as a crash would)."""
        self.group.stop(name, sig=sig, timeout=15.0)

    def stop_all(self) -> None:
        try:
            self.group.stop_all(timeout=15.0)
        finally:
            if self.autogroup_was is not None:
                autogroup_set(self.autogroup_was == "1")
                self.autogroup_was = None

    @property
    def autogroup(self) -> str:
        """How the kernel grouped the stack's processes for the scheduler, for the figures."""
        if self.autogroup_was is not None:
            return "off while the stack ran"
        try:
            return "on" if host.AUTOGROUP.read_text().strip() == "1" else "off"
        except OSError:
            return "none"

    def _parts(self) -> Iterator[tuple[str, str, list[str]]]:
        """(part, its /proc directory, the fields of its stat after the name) for every process
        of the stack (by its process group) and of the shared servers (PostgreSQL, Redis, nginx)."""
        groups = {process.pid: name for name, process in self.processes.items()}
        shared = {"postgres": "postgresql", "nginx": "nginx"}
        if "redis" not in groups.values():
            shared["redis-server"] = "redis"
        for path, comm, fields in procs.proc_stats():
            name = groups.get(int(fields[2])) or shared.get((comm.split(":")[0].split() or [""])[0])
            if name:
                yield name, path, fields

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each part of the stack (its whole process group), and by
        the shared servers (PostgreSQL, Redis, nginx), read from /proc."""
        tick = os.sysconf("SC_CLK_TCK")
        used: dict[str, float] = {}
        for name, _path, fields in self._parts():
            # utime and stime are the 12th and 13th fields after the name.
            used[name] = used.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        # The machine's own view: time no process used, and time the hypervisor gave to
        # other guests (steal), which slows every part alike and varies from run to run.
        totals = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        used["(idle)"] = (int(totals[3]) + int(totals[4])) / tick
        used["(stolen)"] = int(totals[7]) / tick if len(totals) > 7 else 0.0
        return used

    def runqueue_seconds(self) -> dict[str, float]:
        """Seconds each part's threads have spent ready to run but waiting for a core, so far
        (the scheduler's own count, /proc/<pid>/task/<tid>/schedstat: time on a core, time
        waiting on a run queue, slices). Over a window, a part's share of it per second is
        how many of its threads were kept waiting on average."""
        waited: dict[str, float] = {}
        for name, path, _fields in self._parts():
            try:
                tasks = os.listdir(os.path.join(path, "task"))
            except OSError:
                continue
            for tid in tasks:
                try:
                    schedstat = Path(path, "task", tid, "schedstat").read_text().split()
                except OSError:
                    continue
                waited[name] = waited.get(name, 0.0) + int(schedstat[1]) / 1e9
        return waited

    def url(self, name: str, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"
