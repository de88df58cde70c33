"""The benchmark's batch work (the legacy backend, the workers) yields to the shop's web
processes: it runs niced, and in the idle class where the machine can."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import host
from bench.host import autogroup_set
from bench.phases import busy_share, waiting_share
from bench.stack import Settings, Stack
from tests.conftest import eventually

PROBE = "import os; print(os.sched_getscheduler(0), os.nice(0))"


def _policy_and_nice(stack: Stack, nice: int) -> tuple[int, int]:
    argv = [*stack.batch_prefix(nice), sys.executable, "-c", PROBE]
    policy, niceness = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    return int(policy), int(niceness)


@pytest.mark.skipif(not shutil.which("chrt") or not hasattr(os, "SCHED_IDLE"), reason="needs Linux's chrt")
def test_batch_work_runs_in_the_idle_class_at_its_nice(tmp_path):
    ours = os.nice(0)
    assert _policy_and_nice(Stack(tmp_path), 10) == (os.SCHED_IDLE, min(19, ours + 10))
    # To compare: nice alone.
    plain = Stack(tmp_path, settings=Settings(batch_idle=False))
    assert _policy_and_nice(plain, 10) == (os.SCHED_OTHER, min(19, ours + 10))


def test_the_shops_own_processes_run_as_they_are(tmp_path):
    assert Stack(tmp_path).batch_prefix(0) == []


SPIN = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end: pass"


def _until_it_ran(stack: Stack, name: str, before: dict[str, float], seconds: float = 1.0) -> None:
    """Waits until the part `name` has had `seconds` of CPU since `before` (at most 30 s)."""
    deadline = time.monotonic() + 30
    while stack.cpu_seconds().get(name, 0.0) - before.get(name, 0.0) < seconds:
        assert time.monotonic() < deadline, f"{name} did not run"
        time.sleep(0.1)


@pytest.mark.skipif(not shutil.which("taskset") or not os.path.isdir("/proc"), reason="needs Linux's taskset")
def test_a_part_kept_waiting_for_a_core_is_counted_and_one_that_sleeps_is_not(tmp_path):
    # Two spinners on one core: each waits while the other runs. A sleeper never waits.
    stack = Stack(tmp_path)
    (tmp_path / "logs").mkdir()
    asleep = tmp_path / "asleep"
    sleeper = f"import pathlib, time; pathlib.Path({str(asleep)!r}).touch(); time.sleep(60)"
    for name, code in (("spinner", SPIN), ("other", SPIN), ("sleeper", sleeper)):
        stack.group.start(["taskset", "-c", "0", sys.executable, "-c", code], name=name)
    try:
        # The sleeper's own start (the interpreter's imports) waits for the core like any work:
        # it is counted from once it is asleep.
        deadline = time.monotonic() + 30
        while not asleep.exists():
            assert time.monotonic() < deadline, "the sleeper did not start"
            time.sleep(0.05)
        before, cpu_before = stack.runqueue_seconds(), stack.cpu_seconds()
        _until_it_ran(stack, "spinner", cpu_before)
        after = stack.runqueue_seconds()
    finally:
        stack.group.stop_all(together=True, sig=signal.SIGKILL)

    # A second on the core it shares: about as long spent waiting for it.
    assert after["spinner"] - before.get("spinner", 0.0) > 0.5
    assert after["sleeper"] - before.get("sleeper", 0.0) < 0.05


def test_the_share_waiting_is_the_wait_over_the_window():
    assert waiting_share({"a": 1.0}, {"a": 3.0, "b": 0.5}, 4.0) == {"a": 0.5, "b": 0.125}


def test_the_share_of_a_core_is_the_cpu_over_the_window_and_a_part_that_lost_a_process_reads_zero():
    # "b" lost a process that had used CPU before the window: its count went down, not below zero.
    assert busy_share({"a": 1.0, "b": 5.0}, {"a": 3.0, "b": 4.0, "c": 1.0}, 4.0) == {"a": 0.5, "b": 0.0, "c": 0.25}


THREADS = (
    "import threading, time\n"
    "[threading.Thread(target=time.sleep, args=(60,)).start() for _ in range(3)]\n"
    "time.sleep(60)"
)


def _nices(pid: int) -> set[int]:
    tasks = os.listdir(f"/proc/{pid}/task")
    return {int(Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[16]) for tid in tasks}


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the threads' nice from Linux's /proc")
def test_a_part_is_reniced_in_every_thread_for_the_stampede_and_back(tmp_path):
    stack = Stack(tmp_path)
    (tmp_path / "logs").mkdir()
    process = stack.group.start([sys.executable, "-c", THREADS], name="hotpath")
    try:
        eventually(lambda: len(os.listdir(f"/proc/{process.pid}/task")) == 4, message="the threads did not start")
        ours = os.nice(0)

        assert stack.renice("hotpath", ours + 5)
        assert _nices(process.pid) == {ours + 5}
        # Back to where it was: only with the privilege to raise a priority.
        privileged = os.geteuid() == 0
        assert stack.renice("hotpath", ours) is privileged
        assert _nices(process.pid) == ({ours} if privileged else {ours + 5})
        assert not stack.renice("nothing", 5)
    finally:
        stack.group.stop_all(together=True, sig=signal.SIGKILL)


def test_autogroups_are_turned_off_and_back_on(tmp_path):
    switch = tmp_path / "sched_autogroup_enabled"
    switch.write_text("1\n")
    assert autogroup_set(False, switch) == "1"
    assert switch.read_text() == "0"
    # Nothing to change: nothing to restore.
    assert autogroup_set(False, switch) is None
    assert autogroup_set(True, switch) == "0"
    assert switch.read_text() == "1"
    # A kernel without the setting, or a machine that does not allow it: left alone.
    assert autogroup_set(False, tmp_path / "missing") is None


def test_the_stack_gives_the_autogroup_setting_back_when_it_stops(tmp_path, monkeypatch):
    switch = tmp_path / "sched_autogroup_enabled"
    switch.write_text("1")
    monkeypatch.setattr(host, "AUTOGROUP", switch)
    stack = Stack(tmp_path)
    (tmp_path / "logs").mkdir()
    stack.autogroup_was = autogroup_set(False)
    assert stack.autogroup == "off while the stack ran"
    stack.stop_all()
    assert switch.read_text() == "1"
    assert stack.autogroup == "on"


def _may_switch_autogroups() -> bool:
    return (
        shutil.which("chrt") is not None and shutil.which("taskset") is not None and os.access(host.AUTOGROUP, os.W_OK)
    )


@pytest.mark.skipif(not _may_switch_autogroups(), reason="needs Linux's autogroup setting, chrt and taskset, as root")
def test_batch_work_yields_a_core_to_a_part_in_a_session_of_its_own(tmp_path):
    # Each part of the stack starts a session of its own. With the kernel's autogroups on,
    # each session is a group of its own and the cores are shared between the groups first:
    # a part in the idle class took half the core from a spinner at normal priority. With
    # them off, it takes next to nothing while the other wants the core.
    stack = Stack(tmp_path)
    (tmp_path / "logs").mkdir()
    was = autogroup_set(False)
    try:
        pin = ["taskset", "-c", "0"]
        stack.group.start([*pin, sys.executable, "-c", SPIN], name="shop")
        stack.group.start([*stack.batch_prefix(10), *pin, sys.executable, "-c", SPIN], name="batch")
        before = stack.cpu_seconds()
        _until_it_ran(stack, "shop", before)
        after = stack.cpu_seconds()
    finally:
        stack.group.stop_all(together=True, sig=signal.SIGKILL)
        if was is not None:
            autogroup_set(was == "1")
    assert after["batch"] - before.get("batch", 0.0) < 0.1


@pytest.mark.parametrize(("cores", "cpus"), [(1, ""), (2, "0"), (4, "0-2")])
def test_the_workers_run_on_every_core_but_the_legacy_apis(monkeypatch, tmp_path, cores, cpus):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    monkeypatch.delenv("BENCH_WORKER_CPUS", raising=False)
    stack = Stack(tmp_path)
    assert stack.settings.worker_cpus == cpus
    started = []
    monkeypatch.setattr(stack, "start", lambda name, argv, env=None: started.append(argv))
    stack.start_worker()
    argv = started[0]
    if cpus and shutil.which("taskset"):
        at = argv.index("taskset")
        assert argv[at : at + 3] == ["taskset", "-c", cpus]
    else:
        assert "taskset" not in argv


def test_a_capped_wait_for_a_quiet_machine_ends_at_the_cap():
    from bench.host import machine_quiet, quiet_waits_capped

    # A machine that never counts as quiet (less than no core busy): the wait lasts its whole
    # timeout, or the cap when one is set.
    quiet_waits_capped(0.2)
    try:
        capped = machine_quiet(busy_below=-1.0, window=0.1, timeout=30.0)
    finally:
        quiet_waits_capped(float("inf"))
    assert 0.2 <= capped < 5.0
    assert machine_quiet(busy_below=-1.0, window=0.1, timeout=0.5) >= 0.5
