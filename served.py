"""The addresses of the shop that `python3 run.py` serves, kept in `var/served.json` while it
runs, so that a command in a second terminal (`manage.py sale open ...`) reaches that server
and not the default port. run.py writes the record (`served_recorded`); the settings of a
development process read it (`served_settings`) wherever the environment names none.

Standard library only, as procs: run.py imports it with the system Python."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

# What the settings take from run.py's record when the environment does not set it: the
# addresses that lead back to the server it started, on whichever host and port it was given.
SERVED_SETTINGS = ("LEGACY_API_URL", "EDGE_MONOLITH_PORT", "SHOP_BASE_URL")
SERVED_FILE = "served.json"


class AlreadyServed(RuntimeError):
    """Another run.py serves the shop from this directory: a second would share its database
    file, broker and beat schedule, and take its record away on the way out."""


@contextlib.contextmanager
def served_recorded(var_dir: Path, env: dict[str, str]) -> Iterator[Path]:
    """While run.py serves the shop, its addresses (`SERVED_SETTINGS` in `env`) are kept in
    `<var_dir>/served.json` with its process id, so that a second terminal's commands
    (`manage.py sale open ...`) reach this server and not the default port. Raises
    AlreadyServed, writing nothing, while another live process holds the record; the record is
    removed on the way out only while it is still this process's."""
    path = Path(var_dir) / SERVED_FILE
    other = served_pid(var_dir)
    if other is not None and other != os.getpid():
        raise AlreadyServed(f"the shop already runs from {Path(var_dir).name}/ (process {other})")
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"pid": os.getpid(), "settings": {name: env[name] for name in SERVED_SETTINGS if name in env}}
    path.write_text(json.dumps(record))
    try:
        yield path
    finally:
        if served_pid(var_dir) in (os.getpid(), None):
            path.unlink(missing_ok=True)


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


def served_pid(var_dir: Path) -> int | None:
    """The process that recorded its server in `var_dir`, while it still runs; else None."""
    record = _record(var_dir)
    return record[0] if record is not None and _alive(record[0]) else None


def served_settings(var_dir: Path) -> dict[str, str]:
    """The addresses run.py recorded in `var_dir`, while the process that recorded them still
    runs; {} when none is recorded, the record is unreadable, or its server is gone (killed
    before it could remove its record)."""
    record = _record(var_dir)
    if record is None or not _alive(record[0]):
        return {}
    settings = record[1]
    if not isinstance(settings, dict):
        return {}
    return {name: str(settings[name]) for name in SERVED_SETTINGS if name in settings}
