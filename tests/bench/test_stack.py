"""The benchmark's batch work (the legacy backend, the workers) yields to the shop's web
processes: it runs niced, and in the idle class where the machine can."""

import os
import shutil
import subprocess
import sys

import pytest

from bench.stack import Settings, Stack

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
