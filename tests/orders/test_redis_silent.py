"""A Redis that stops answering without closing its connections (a paused server, a failover
whose old address goes silent): each call fails after the cache's timeout, and the hot path
answers 503 with Retry-After instead of holding the buyer's request until TCP gives up."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from django.core.cache import caches
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.cache import PooledRedisCache, redis_client, redis_script
from orders.models import HotOrder
from orders.selectors import hot_product_get, product_memo_forget
from tests.conftest import settings_of_fresh_process
from tests.orders.conftest import order_body, post_order

TIMEOUT = 0.3  # seconds; the shipped default is REDIS_TIMEOUT_SECONDS=2


def _commands(data: bytes) -> tuple[list[str], int]:
    """The names of the whole commands (RESP arrays of bulk strings) at the start of `data`,
    and how many bytes they took."""
    names, at = [], 0
    try:
        while data[at : at + 1] == b"*":
            end = data.index(b"\r\n", at)
            count, next_at = int(data[at + 1 : end]), end + 2
            name = ""
            for index in range(count):
                end = data.index(b"\r\n", next_at)
                length = int(data[next_at + 1 : end])
                if len(data) < end + 2 + length + 2:
                    raise ValueError("cut short")
                if index == 0:
                    name = data[end + 2 : end + 2 + length].decode().upper()
                next_at = end + 2 + length + 2
            names.append(name)
            at = next_at
    except ValueError:  # the rest has not arrived yet
        pass
    return names, at


class SilentRedis:
    """A server on loopback that greets its clients as Redis does (redis-py names itself on
    each new connection with CLIENT SETINFO) and then answers nothing: a server that hung
    mid-session. It keeps the names of the commands it was sent."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.server.getsockname()[1]}/0"
        self.sent: list[str] = []
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection = self.server.accept()[0]
            except OSError:
                return
            self.connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        pending = b""
        while True:
            try:
                data = connection.recv(65536)
            except OSError:
                return
            if not data:
                return
            names, used = _commands(pending + data)
            pending = (pending + data)[used:]
            with self.lock:
                self.sent += names
            for name in names:
                if name == "CLIENT":
                    connection.sendall(b"+OK\r\n")

    def commands(self) -> list[str]:
        """What clients asked of it once connected (their greetings left out), in order."""
        with self.lock:
            return [name for name in self.sent if name != "CLIENT"]

    def close(self) -> None:
        self.server.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent_redis() -> Iterator[SilentRedis]:
    server = SilentRedis()
    yield server
    server.close()


def _silent_cache_settings(url: str) -> dict:
    options = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT}
    return {"default": {"BACKEND": "config.cache.PooledRedisCache", "LOCATION": url, "OPTIONS": options}}


def test_the_cache_waits_for_redis_as_long_as_the_setting_says():
    options = "settings.CACHES['default'].get('OPTIONS')"
    url = "redis://127.0.0.1:6379/0"
    assert settings_of_fresh_process(options, REDIS_URL=url) == {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
    assert settings_of_fresh_process(options, REDIS_URL=url, REDIS_TIMEOUT_SECONDS="0.5") == {
        "socket_timeout": 0.5,
        "socket_connect_timeout": 0.5,
    }


def test_a_script_on_a_silent_redis_fails_after_one_timeout(silent_redis):
    backend = PooledRedisCache(silent_redis.url, _silent_cache_settings(silent_redis.url)["default"])
    client = redis_client(backend)
    script = redis_script(client, "return redis.call('GET', KEYS[1])")
    with pytest.raises(RedisTimeoutError):
        script(keys=["test:silent"], args=[], client=client)
    # Once, not again by redis-py's path: a second try would double what the buyer waits.
    assert silent_redis.commands() == ["EVALSHA"]


def _order_with_redis_silent(client, settings, silent_redis: SilentRedis):
    """A buyer's order while the cache's Redis is the silent one; the hot path's answer."""
    settings.CACHES = _silent_cache_settings(silent_redis.url)
    try:
        response = post_order(client, order_body())
    finally:
        caches["default"].close()
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "unavailable"
    assert int(response["Retry-After"]) > 0
    assert not HotOrder.objects.exists()
    return response


@pytest.mark.django_db
def test_the_order_api_answers_503_when_redis_goes_silent(client, settings, allocation, silent_redis):
    hot_product_get(category="rods", product="muskie-casting-rod")  # the product known before
    _order_with_redis_silent(client, settings, silent_redis)
    assert silent_redis.commands() == ["EVALSHA"]  # the gate's script, asked once


@pytest.mark.django_db
def test_the_order_api_answers_503_when_redis_goes_silent_before_the_product_is_known(
    client, settings, allocation, silent_redis
):
    product_memo_forget()
    _order_with_redis_silent(client, settings, silent_redis)
    assert silent_redis.commands() == ["GET"]  # the product's cached data, asked once
