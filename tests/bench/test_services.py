"""The drills' private servers: a paused Redis keeps its connections and answers nothing until
it goes on, with what it held."""

import shutil
import threading
import time

import pytest
import redis

from bench.services import PrivateRedis

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


def _state(pid: int) -> str:
    """The process's scheduling state, as /proc shows it (T: stopped)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_a_paused_redis_answers_nothing_then_goes_on(private_redis):
    client = redis.Redis.from_url(private_redis.url, socket_timeout=0.3)
    client.set("kept", "1")
    pause = threading.Thread(target=private_redis.pause, args=(1.0,))
    started = time.monotonic()
    pause.start()
    deadline = time.monotonic() + 5
    while _state(private_redis.process.pid) != "T" and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(redis.exceptions.TimeoutError):
        client.get("kept")  # connected, and no reply within its timeout
    pause.join()
    assert time.monotonic() - started >= 1.0
    assert client.get("kept") == b"1"  # the same server, its data kept
