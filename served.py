"""The addresses of the shop that `python3 run.py` serves, kept in `var/served.json` while it
runs, so that a command in a second terminal (`manage.py sale open ...`) reaches that server
and not the default port. run.py writes the record (`served_recorded`); the settings of a
development process read it (`served_settings`) wherever the environment names none.

Standard library only, as procs: run.py imports it with the system Python."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None

# What the settings take from run.py's record when the environment does not set it: the
# addresses that lead back to the server it started, on whichever host and port it was given.
SERVED_SETTINGS = ("LEGACY_API_URL", "EDGE_MONOLITH_PORT", "SHOP_BASE_URL")
SERVED_FILE = "served.json"


class AlreadyServed(RuntimeError):
    """Another run.py serves the shop from this directory: a second would share its database
    file, broker and beat schedule, and take its record away on the way out."""


def _lock(fd: int, *, shared: bool) -> bool:
    """A non-blocking lock on the record (True when taken): run.py holds it exclusive while it
    serves, and the kernel drops it when the process dies, however it dies."""
    if fcntl is None:  # no flock here: the process id alone says whether it runs
        return True
    for _ in range(3):  # a reader's shared lock lasts a moment
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            time.sleep(0.05)
    return False


@contextlib.contextmanager
def served_recorded(var_dir: Path, env: dict[str, str]) -> Iterator[Path]:
    """While run.py serves the shop, its addresses (`SERVED_SETTINGS` in `env`) are kept in
    `<var_dir>/served.json` with its process id, so that a second terminal's commands
    (`manage.py sale open ...`) reach this server and not the default port. Raises
    AlreadyServed, writing nothing, while another server holds the record."""
    path = Path(var_dir) / SERVED_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # The lock decides: a record whose server was killed is not held, whatever process
        # its id names now. Without flock, a live process under that id is taken to serve.
        if not _lock(fd, shared=False) or (fcntl is None and served_pid(var_dir) not in (None, os.getpid())):
            other = _record(var_dir)
            raise AlreadyServed(f"the shop already runs from {Path(var_dir).name}/ (process {other and other[0]})")
        record = {"pid": os.getpid(), "settings": {name: env[name] for name in SERVED_SETTINGS if name in env}}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)  # and with it the lock


def _record(var_dir: Path) -> tuple[int, object] | None:
    try:
        record = json.loads((Path(var_dir) / SERVED_FILE).read_text())
        return int(record["pid"]), record["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    if pid <= 0:  # 0 and below would name process groups, not a process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        pass
    return True


def _held(var_dir: Path) -> bool:
    """True while a server holds the record's lock (a record left by a server that was killed,
    whose process id the machine may since have given to another process, is not held)."""
    try:
        fd = os.open(Path(var_dir) / SERVED_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        return not _lock(fd, shared=True)
    finally:
        os.close(fd)


def served_pid(var_dir: Path) -> int | None:
    """The process that recorded its server in `var_dir`, while it still serves; else None."""
    record = _record(var_dir)
    if record is None or not _alive(record[0]):
        return None
    if fcntl is not None and not _held(var_dir):
        return None
    return record[0]


def served_settings(var_dir: Path) -> dict[str, str]:
    """The addresses run.py recorded in `var_dir`, while the process that recorded them still
    serves; {} when none is recorded, the record is unreadable, or its server is gone (killed
    before it could remove its record)."""
    if served_pid(var_dir) is None:
        return {}
    settings = _record(var_dir)[1]
    if not isinstance(settings, dict):
        return {}
    return {name: str(settings[name]) for name in SERVED_SETTINGS if name in settings}
