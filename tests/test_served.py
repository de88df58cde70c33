"""served: run.py's addresses, read by a second terminal's settings while run.py runs and
ignored once it is gone, whatever was left in the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import served


def test_run_py_s_addresses_are_read_while_its_process_runs_and_gone_after(tmp_path):
    env = {"LEGACY_API_URL": "http://127.0.0.1:8011/legacy-api", "EDGE_MONOLITH_PORT": "8011", "PATH": "/bin"}
    assert served.served_settings(tmp_path) == {}  # nothing recorded: the settings' defaults
    with served.served_recorded(tmp_path / "var", env) as path:
        # Only the addresses, never the rest of the environment it was given.
        assert served.served_settings(tmp_path / "var") == {
            "LEGACY_API_URL": "http://127.0.0.1:8011/legacy-api",
            "EDGE_MONOLITH_PORT": "8011",
        }
    assert not path.exists()
    assert served.served_settings(tmp_path / "var") == {}


@pytest.mark.parametrize(
    "record",
    ['{"pid": 0, "settings": {"LEGACY_API_URL": "x"}}', "{not json", '{"settings": {}}', '{"pid": 1, "settings": 5}'],
)
def test_an_unreadable_record_or_one_naming_no_process_is_ignored(tmp_path, record):
    (tmp_path / served.SERVED_FILE).write_text(record)
    assert served.served_settings(tmp_path) == {}


def test_a_record_left_by_a_killed_server_is_ignored(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid names no process now
    (tmp_path / served.SERVED_FILE).write_text(f'{{"pid": {gone.pid}, "settings": {{"SHOP_BASE_URL": "http://x"}}}}')
    assert served.served_settings(tmp_path) == {}


SERVE_A_MINUTE = """
import sys, time
sys.path.insert(0, {root!r})
import served
with served.served_recorded(__import__("pathlib").Path({var!r}), {{"SHOP_BASE_URL": "http://first"}}):
    print("serving", flush=True)
    time.sleep(60)
"""


def test_a_second_server_is_refused_while_the_first_serves_and_leaves_its_record(tmp_path):
    code = SERVE_A_MINUTE.format(root=str(Path(served.__file__).parent), var=str(tmp_path))
    first = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "serving"

        second = served.served_recorded(tmp_path, {"SHOP_BASE_URL": "http://second"})
        with pytest.raises(served.AlreadyServed, match=f"process {first.pid}"), second:
            pass
        assert served.served_pid(tmp_path) == first.pid
        assert served.served_settings(tmp_path) == {"SHOP_BASE_URL": "http://first"}
    finally:
        first.kill()  # killed: its record stays behind, unlocked
        first.wait()
    assert (tmp_path / served.SERVED_FILE).exists() and served.served_pid(tmp_path) is None
    with served.served_recorded(tmp_path, {"SHOP_BASE_URL": "http://second"}):
        assert served.served_settings(tmp_path) == {"SHOP_BASE_URL": "http://second"}
    assert served.served_pid(tmp_path) is None


def test_a_record_left_by_a_killed_server_whose_id_now_names_another_process_is_not_served(tmp_path):
    """A machine restarted, or ids come round: the record names a live process that serves nothing."""
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / served.SERVED_FILE).write_text(
            f'{{"pid": {stranger.pid}, "settings": {{"SHOP_BASE_URL": "http://gone"}}}}'
        )
        assert served.served_pid(tmp_path) is None and served.served_settings(tmp_path) == {}
        with served.served_recorded(tmp_path, {"SHOP_BASE_URL": "http://new"}):
            assert served.served_settings(tmp_path) == {"SHOP_BASE_URL": "http://new"}
    finally:
        stranger.kill()
        stranger.wait()
