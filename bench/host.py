"""The machine the benchmark runs on: what it is, whether it is quiet enough to measure, its
scheduler's autogroups, and its PostgreSQL."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path


def machine(**servers: str) -> dict:
    """What a run's figures were measured on: the cores, Python, Django, Celery, and the
    versions of the servers given."""
    import celery
    import django

    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "django": django.get_version(),
        "celery": celery.__version__,
        **servers,
    }


def ensure_services() -> None:
    """PostgreSQL is part of the stack: start it when it is down."""
    if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode != 0:
        version = sorted(os.listdir("/etc/postgresql"))[0]
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True)
    for _ in range(60):
        if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError("PostgreSQL did not come up")


AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")


def autogroup_set(enabled: bool, switch: Path | None = None) -> str | None:
    """Turns the kernel's session autogroups on or off; returns the setting it had, or None
    when there is nothing to change or it may not be changed (no such kernel setting, not
    allowed).

    With autogroups on, every process that starts a session of its own (each server the
    stack starts does, so that it is stopped with its children) gets a task group of its
    own, and the scheduler shares the cores fairly between the groups first. A process's
    nice and its idle scheduling class then count only inside its own group: the legacy API
    and the workers, each alone in theirs, took a core from PostgreSQL, the hot path and
    the pages as readily as any of them. Off, the whole machine is one group, as if each
    part ran on servers of its own under the priorities it is given. A process keeps the
    group it was given when it started, so this is set before the stack starts."""
    switch = switch or AUTOGROUP
    try:
        was = switch.read_text().strip()
        want = "1" if enabled else "0"
        if was == want:
            return None
        switch.write_text(want)
        return was
    except OSError:
        return None


def _cpu_busy_and_total() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle, sum(fields[:8])


# The longest any wait for a quiet machine may last: a run that judges only the books (the
# quick one, in CI) sets it low, since its speed figures are only reported.
QUIET_WAIT_CAP = {"seconds": float("inf")}


def quiet_waits_capped(seconds: float) -> None:
    QUIET_WAIT_CAP["seconds"] = seconds


def machine_quiet(*, busy_below: float = 0.15, window: float = 0.5, timeout: float = 30.0) -> float:
    """Waits until the machine's cores are mostly idle (less than `busy_below` of them busy
    over `window` seconds: an autovacuum, a checkpoint or the last phase's stragglers done),
    at most `timeout` seconds (and at most the cap, `quiet_waits_capped`); returns how long it
    waited. A figure measured while something else runs on the other core (its hyperthread
    sibling, often) reads up to half as fast."""
    timeout = min(timeout, QUIET_WAIT_CAP["seconds"])
    started = time.monotonic()
    cores = os.cpu_count() or 1
    while time.monotonic() - started < timeout:
        busy0, total0 = _cpu_busy_and_total()
        time.sleep(window)
        busy1, total1 = _cpu_busy_and_total()
        if total1 > total0 and (busy1 - busy0) / (total1 - total0) * cores < busy_below:
            break
    return round(time.monotonic() - started, 2)


def all_but_last_core() -> str:
    """Every core but the last (the legacy API's), as taskset lists them; "" on one core."""
    cores = os.cpu_count() or 1
    return "" if cores < 2 else "0" if cores == 2 else f"0-{cores - 2}"
