"""procs: a child runs in a session of its own, is stopped by a signal to it first (so it stops
its own children), then its group, then SIGKILL; waits fail at once when the child dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import procs
from tests.conftest import ROOT, eventually

# A parent that starts two children in its own process group. On SIGTERM it stops them itself
# with SIGUSR1, as a Celery worker stops its pool; a child that gets SIGTERM says so instead.
PARENT = """
import signal, subprocess, sys, time
CHILD = '''
import signal, sys, time
def said(word):
    def handler(*_):
        print(word, flush=True)
        sys.exit(0)
    return handler
signal.signal(signal.SIGUSR1, said("child stopped by its parent"))
signal.signal(signal.SIGTERM, said("child got SIGTERM"))
print("child up", flush=True)
time.sleep(600)
'''
children = [subprocess.Popen([sys.executable, "-c", CHILD]) for _ in range(2)]
def stop(*_):
    print("parent got SIGTERM", flush=True)
    for child in children:
        child.send_signal(signal.SIGUSR1)
    for child in children:
        child.wait()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("pids", *[c.pid for c in children], flush=True)
time.sleep(600)
"""

# A parent that ignores SIGTERM, with a child that ignores it too.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
CHILD = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('child up', flush=True); " \\
    "time.sleep(600)"
child = subprocess.Popen([sys.executable, "-c", CHILD])
print("pids", child.pid, flush=True)
time.sleep(600)
"""

# A parent that leaves its child behind when it exits.
CARELESS = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; print('child up', flush=True); time.sleep(600)"])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("pids", child.pid, flush=True)
time.sleep(600)
"""


def started(group: procs.ProcessGroup, script: str, name: str, children: int) -> tuple[procs.Process, list[int]]:
    """Starts `script` and waits until its children are up; returns it and their pids."""
    process = group.start([sys.executable, "-c", textwrap.dedent(script)], name=name)
    procs.wait_until(lambda: process.log().count("child up") == children, what=f"{name}'s children", process=process)
    pids = next(line for line in process.log().splitlines() if line.startswith("pids")).split()[1:]
    return process, [int(pid) for pid in pids]


def gone(pid: int) -> bool:
    """No such process, or only its exit status is left (a zombie awaiting its new parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


@pytest.fixture
def group(tmp_path):
    group = procs.ProcessGroup(tmp_path)
    yield group
    group.stop_all()


def test_stop_signals_the_child_alone_so_it_stops_its_own_children(group):
    parent, children = started(group, PARENT, "parent", 2)

    assert procs.stop(parent) == 0

    log = parent.log()
    assert "parent got SIGTERM" in log
    assert log.count("child stopped by its parent") == 2
    assert "child got SIGTERM" not in log
    assert all(gone(pid) for pid in children)


def test_a_child_that_ignores_sigterm_is_killed_with_its_whole_group(group):
    parent, children = started(group, STUBBORN, "stubborn", 1)

    assert procs.stop(parent, timeout=0.5) == -signal.SIGKILL

    eventually(lambda: all(gone(pid) for pid in children), message="the child outlived its group's SIGKILL")


def test_sigkill_goes_to_the_whole_group_at_once(group):
    parent, children = started(group, PARENT, "parent", 2)

    group.stop(parent, sig=signal.SIGKILL)

    assert parent.returncode == -signal.SIGKILL
    eventually(lambda: all(gone(pid) for pid in children), message="a child outlived the SIGKILL")
    # Killed, not asked: nobody had the chance to say anything.
    assert "SIGTERM" not in parent.log() and "stopped by its parent" not in parent.log()
    assert group.get("parent") is None


def test_what_a_child_leaves_behind_in_its_group_is_stopped_too(group):
    parent, children = started(group, CARELESS, "careless", 1)

    assert procs.stop(parent) == 0

    eventually(lambda: all(gone(pid) for pid in children), message="the child left behind still runs")


def test_group_stops_everything_it_started_together_or_one_by_one(tmp_path):
    for together in (False, True):
        group = procs.ProcessGroup(tmp_path)
        first = group.start([sys.executable, "-c", "import time; time.sleep(600)"], name="first")
        second = group.start([sys.executable, "-c", "import time; time.sleep(600)"], name="second")

        group.stop_all(together=together)

        assert (first.returncode, second.returncode) == (-signal.SIGTERM, -signal.SIGTERM)
        assert group.processes == []


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads a process's state from Linux's /proc")
def test_a_group_whose_members_have_all_exited_is_empty_before_they_are_reaped(group):
    # A killed worker's pool processes are orphans that the machine's init reaps when it gets
    # to it (here about once a second): a stop does not wait for that.
    child = group.start([sys.executable, "-c", "pass"], name="exited")

    def state() -> str:
        return Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]

    eventually(lambda: state() == "Z", message="the child did not exit")
    os.killpg(child.pid, 0)  # its group is still there, held by the unreaped child
    assert procs._group_empty(child, 0.0)
    child.wait(timeout=30)


def test_group_kills_everything_it_started_together(tmp_path):
    group = procs.ProcessGroup(tmp_path)
    first = group.start([sys.executable, "-c", "import time; time.sleep(600)"], name="first")
    second = group.start([sys.executable, "-c", "import time; time.sleep(600)"], name="second")

    group.stop_all(together=True, sig=signal.SIGKILL)

    assert (first.returncode, second.returncode) == (-signal.SIGKILL, -signal.SIGKILL)


def test_a_child_runs_in_a_session_of_its_own_and_logs_to_its_file(group, tmp_path):
    child = group.start([sys.executable, "-c", "import os; print(os.getsid(0))"], name="session")
    child.wait(timeout=30)

    assert int(child.log()) == child.pid != os.getsid(0)
    assert child.log_path == tmp_path / "session.log"


def test_waiting_for_a_port_fails_at_once_when_the_child_exits(group):
    child = group.start([sys.executable, "-c", "import sys; sys.exit(4)"], name="quitter")

    with pytest.raises(RuntimeError, match="quitter exited with 4"):
        procs.wait_for_port(procs.free_port(), process=child, timeout=600)


def test_waiting_for_a_port_returns_once_something_listens():
    port = procs.free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), BaseHTTPRequestHandler)
    try:
        procs.wait_for_port(port, timeout=30)
    finally:
        server.server_close()


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(int(self.path.strip("/")))
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_url_is_up_when_it_answers_anything_but_a_server_error():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        procs.wait_for_url(f"{base}/404", timeout=30)
        assert procs.url_status(f"{base}/503") == 503
        with pytest.raises(TimeoutError, match="503"):
            procs.wait_for_url(f"{base}/503", timeout=0.5)
    finally:
        server.shutdown()
        server.server_close()
    assert procs.url_status(base) == 0


def test_procs_imports_without_django_or_the_virtualenv():
    """run.py imports it with the system Python before the virtualenv exists."""
    check = (
        "import sys; sys.path.insert(0, sys.argv[1]); import procs; "
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'django', 'config', 'celery', 'urllib3'}); "
        "print(loaded)"
    )
    # -I: no site-packages from the environment's variables, no user site, no current folder.
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", check, str(ROOT)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
