"""Starting, watching and stopping the shop's child processes (servers, workers, nginx, Redis,
PostgreSQL) for run.py, the tests, the benchmark and the drills.

Standard library only and free of Django: run.py imports it with the system Python before the
virtualenv exists. Every child runs in a session of its own, so a signal meant for the parent
(Ctrl-C in a terminal) never reaches it by accident, and its whole process group can be
stopped at the end without touching anybody else's processes.

    port = free_port()
    with ProcessGroup(log_dir) as group:
        server = group.start(gunicorn_argv(BIN / "gunicorn", "config.wsgi", port=port), env, name="web")
        wait_for_port(port, process=server)
    # everything the group started is stopped here, the last started first
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

HOST = "127.0.0.1"


class Process(subprocess.Popen):
    """A child started in a session of its own; `name` and `log_path` say what it is and where
    its output goes (None: the parent's terminal)."""

    name: str = ""
    log_path: Path | None = None

    def log(self) -> str:
        """Everything it has written so far."""
        if self.log_path is None:
            raise ValueError(f"{self.name or self.args} writes to the terminal, not to a log file")
        return self.log_path.read_text(errors="replace")

    @property
    def running(self) -> bool:
        return self.poll() is None


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on right now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def start(
    argv: Sequence[str | os.PathLike],
    env: dict[str, str] | None = None,
    *,
    name: str = "",
    log: Path | None = None,
    cwd: Path | str | None = None,
    **popen,
) -> Process:
    """Starts `argv` in a new session, its stdout and stderr appended to `log` (or to this
    process's own when `log` is None). Any other keyword goes to Popen (user=, group=, ...)."""
    output = open(log, "ab") if log is not None else None  # noqa: SIM115 - the child keeps its own copy
    try:
        process = Process(
            [str(arg) for arg in argv],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            start_new_session=True,
            **popen,
        )
    finally:
        if output is not None:
            output.close()
    process.name = name or Path(str(argv[0])).name
    process.log_path = Path(log) if log is not None else None
    return process


# --- waiting ---------------------------------------------------------------------------------


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float = 30.0,
    interval: float = 0.1,
    process: subprocess.Popen | None = None,
) -> None:
    """Waits until `ready()` holds; fails at once if `process` exits first (its log says why)."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            where = f"; see {process.log_path}" if getattr(process, "log_path", None) else ""
            raise RuntimeError(f"{_label(process)} exited with {process.returncode} before {what}{where}")
        if ready():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no {what} after {timeout}s")
        time.sleep(interval)


def port_open(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int, *, host: str = HOST, timeout: float = 30.0, process: subprocess.Popen | None = None
) -> None:
    """Waits until something accepts connections on host:port."""
    wait_until(lambda: port_open(port, host), what=f"listener on {host}:{port}", timeout=timeout, process=process)


# Loopback servers are asked directly, whatever proxy the environment names.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def url_status(url: str, *, timeout: float = 2.0) -> int:
    """The HTTP status `url` answers a GET with; 0 when nothing answers."""
    try:
        with _direct.open(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code
    except (OSError, ValueError):
        return 0


def wait_for_url(url: str, *, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    """Waits until `url` answers a GET with anything but a server error (a 404 is an answer)."""
    wait_until(lambda: 0 < url_status(url) < 500, what=f"answer from {url}", timeout=timeout, process=process)


# --- stopping --------------------------------------------------------------------------------


def _label(process: subprocess.Popen) -> str:
    return getattr(process, "name", "") or str(process.args[0] if isinstance(process.args, list) else process.args)


def _signal_group(process: subprocess.Popen, sig: int) -> bool:
    """Signals the process group the child leads; False when nothing is left in it."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # the group's id was reused by somebody else's process
        return False
    return True


def proc_stats() -> Iterator[tuple[str, str, list[str]]]:
    """(its /proc directory, its command's name, the fields of its stat after the name: state,
    ppid, pgrp, ...) for every process on the machine; nothing where there is no procfs."""
    if not os.path.isdir("/proc"):
        return
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat"), "rb") as file:
                stat = file.read().decode(errors="replace")
        except OSError:
            continue  # gone while we looked
        # pid (comm) state ...: the name may hold spaces and parentheses
        head, _, rest = stat.rpartition(")")
        yield entry.path, head[head.find("(") + 1 :], rest.split()


def _group_running(process: subprocess.Popen) -> bool:
    """Whether a process of the group the child leads still runs. A member that has exited but
    waits to be reaped does not count: orphans are reaped by the machine's init, which may do it
    only once a second or so."""
    if not os.path.isdir("/proc"):  # no procfs: a zombie counts as running
        return _signal_group(process, 0)
    return any(int(fields[2]) == process.pid and fields[0] != "Z" for _path, _name, fields in proc_stats())


def _group_empty(process: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_running(process):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _signal_child(process: subprocess.Popen, sig: int) -> None:
    """The first step of a stop: `sig` to the child alone, or SIGKILL to its whole group."""
    if sig == signal.SIGKILL:
        _signal_group(process, sig)
    elif process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)


def _finish(process: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
    """After `_signal_child`: waits `timeout` for the child; then sends `sig` to its whole group
    and waits again; then SIGKILLs the group. Whatever the child left behind in its group (a
    pool process, an embedded beat) gets `sig` too, and SIGKILL if it outlives `timeout`.
    Returns the child's exit code (None if even SIGKILL did not end it)."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(process, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            # Reaped first: until then the child lingers in its group as a zombie.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
    if not _group_empty(process, 0.0):
        _signal_group(process, sig)
        if not _group_empty(process, timeout):
            _signal_group(process, signal.SIGKILL)
            _group_empty(process, 5.0)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    return process.returncode


def stop(process: subprocess.Popen | None, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
    """Stops a child: `sig` to the child itself first, so that a server or a Celery worker shuts
    its own workers down (a SIGTERM to the whole group would kill them under it, which Celery
    logs as an error); its group after `timeout`; SIGKILL after another. SIGKILL goes to the
    whole group at once (a crash, as the drills want it). Returns the child's exit code."""
    if process is None:
        return None
    _signal_child(process, sig)
    return _finish(process, sig=sig, timeout=timeout)


def stop_together(processes: Iterable[subprocess.Popen], *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stops several children at once: each is signalled first, then each is waited for."""
    processes = list(processes)
    for process in processes:
        _signal_child(process, sig)
    for process in processes:
        _finish(process, sig=sig, timeout=timeout)


class ProcessGroup:
    """The children one caller started; `stop_all()` (or leaving the `with` block) stops every
    one still running, the last started first, so servers outlive the workers that call them."""

    def __init__(self, log_dir: Path | None = None, *, cwd: Path | str | None = None):
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.cwd = cwd
        self.processes: list[Process] = []

    def start(
        self, argv: Sequence[str | os.PathLike], env: dict[str, str] | None = None, *, name: str, **popen
    ) -> Process:
        """Starts a child whose output goes to `<log_dir>/<name>.log` (the terminal without a log_dir)."""
        log = self.log_dir / f"{name}.log" if self.log_dir is not None else None
        popen.setdefault("cwd", self.cwd)
        return self.add(start(argv, env, name=name, log=log, **popen))

    def add(self, process: Process) -> Process:
        """Takes a child started elsewhere into the group, to be stopped with the rest."""
        self.processes.append(process)
        return process

    def get(self, name: str) -> Process | None:
        """The last child started under `name` that the group still holds."""
        return next((p for p in reversed(self.processes) if p.name == name), None)

    def log(self, process: Process) -> str:
        return process.log()

    def stop(self, process: Process | str | None, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stops one child (given or by name) and lets go of it."""
        if isinstance(process, str):
            process = self.get(process)
        if process is None:
            return
        with contextlib.suppress(ValueError):
            self.processes.remove(process)
        stop(process, sig=sig, timeout=timeout)

    def stop_all(self, *, together: bool = False, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stops every child with `sig`: one after the other, or all signalled at once when
        `together`. SIGKILL ends each child's whole process group at once."""
        processes, self.processes = self.processes[::-1], []
        if together:
            stop_together(processes, sig=sig, timeout=timeout)
            return
        for process in processes:
            stop(process, sig=sig, timeout=timeout)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()


# --- the shop's own servers ------------------------------------------------------------------


def gunicorn_argv(
    gunicorn: str | os.PathLike,
    wsgi: str,
    *,
    port: int,
    host: str = HOST,
    workers: int = 2,
    threads: int = 4,
    config: str | None = None,
    timeout: int = 60,
    graceful_timeout: int | None = 5,
    extra: Sequence[str] = (),
) -> list[str]:
    """`gunicorn <wsgi>:application` on host:port; `config` is a gunicorn config file."""
    argv = [str(gunicorn), *(["-c", config] if config else []), f"{wsgi}:application", "--bind", f"{host}:{port}"]
    argv += ["--workers", str(workers), "--threads", str(threads), "--timeout", str(timeout)]
    if graceful_timeout is not None:
        argv += ["--graceful-timeout", str(graceful_timeout)]
    return [*argv, *extra]


# How long granian keeps a request thread that has nothing to do: its most (default 30 s).
# Each thread holds its own database connection for the process's life (CONN_MAX_AGE=none):
# a thread ended after a quiet half-minute took its connection's warm state with it, and the
# thread that replaced it opened a new one in the next rush, a sale's first seconds (in the
# benchmark, 6 of the hot path's 8 connections were opened again in each stampede's first 4 s).
GRANIAN_IDLE_THREAD_SECONDS = 600


def granian_argv(
    granian: str | os.PathLike,
    wsgi: str,
    *,
    port: int,
    host: str = HOST,
    workers: int = 2,
    threads: int = 4,
    graceful_timeout: int = 5,
    idle_thread_seconds: int = GRANIAN_IDLE_THREAD_SECONDS,
    extra: Sequence[str] = (),
) -> list[str]:
    """`granian <wsgi>:application` on host:port, as WSGI: `workers` processes of `threads`
    threads each (Django's requests run in those threads, each with its own database
    connection; HTTP is parsed and written by the server's own runtime, outside the GIL). A
    worker that dies is started again; one that is stopped gets `graceful_timeout` seconds. A
    thread idle for `idle_thread_seconds` ends (and a new one takes the next request)."""
    argv = [str(granian), "--interface", "wsgi", "--http", "1", "--host", host, "--port", str(port)]
    argv += ["--no-ws", "--workers", str(workers), "--blocking-threads", str(threads)]
    argv += ["--blocking-threads-idle-timeout", str(idle_thread_seconds)]
    argv += ["--respawn-failed-workers", "--workers-kill-timeout", str(graceful_timeout), "--log-level", "warning"]
    return [*argv, *extra, f"{wsgi}:application"]


def celery_worker_argv(
    celery: str | os.PathLike,
    *,
    hostname: str,
    concurrency: int = 2,
    loglevel: str = "INFO",
    beat_schedule: Path | str | None = None,
    queues: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """A Celery worker of the shop (`-A config`), with beat embedded when `beat_schedule` is
    given (the file beat keeps its schedule in). Gossip and mingle are off: the shop's workers
    share nothing through them, and they slow every start."""
    argv = [str(celery), "-A", "config", "worker"]
    if beat_schedule is not None:
        argv += ["--beat", "--schedule", str(beat_schedule)]
    argv += ["--loglevel", loglevel, "--concurrency", str(concurrency), "--without-gossip", "--without-mingle"]
    argv += ["--hostname", hostname]
    if queues:
        argv += ["--queues", queues]
    return [*argv, *extra]
