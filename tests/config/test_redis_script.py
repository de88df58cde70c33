"""The cache's Lua scripts (config.cache.Script): run by their SHA on a pooled connection, loaded
again after a Redis restart, answered again after a dropped connection, and traced through
redis-py's own path."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import use_span

from config.cache import redis_client, redis_script

INCR_BY = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


@pytest.fixture
def client():
    client = redis_client()
    if client is None:
        pytest.skip("scripts run where the cache is Redis: set REDIS_URL=redis://...")
    return client


@pytest.fixture
def key(client):
    name = cache.make_key(f"test:script:{uuid.uuid4().hex}")
    yield name
    client.delete(name)


def _incr(client, key: str, by: int):
    return redis_script(client, INCR_BY)(keys=[key], args=[by], client=client)


def test_a_script_answers_with_its_reply(client, key):
    assert _incr(client, key, 2) == 2
    assert _incr(client, key, 3) == 5
    assert redis_script(client, INCR_BY) is redis_script(client, INCR_BY)


def test_a_script_loads_itself_again_after_redis_forgot_it(client, key):
    assert _incr(client, key, 1) == 1
    client.script_flush()  # what a Redis restart does to the loaded scripts
    assert _incr(client, key, 1) == 2
    assert _incr(client, key, 1) == 3


def test_a_dropped_connection_costs_no_answer_and_leaves_no_reply_behind(client, key):
    assert _incr(client, key, 1) == 1
    own = redis_script(client, INCR_BY)._connection(client.connection_pool)
    own.send_command("CLIENT", "ID")
    client.client_kill_filter(_id=own.read_response())  # the server drops this thread's connection
    assert _incr(client, key, 1) == 2
    # The next commands on the same pool each read their own reply.
    assert client.get(key) == b"2"
    assert _incr(client, key, 5) == 7


def test_a_traced_call_takes_redis_pys_path(client, key, monkeypatch):
    script = redis_script(client, INCR_BY)
    calls = []
    registered = script.registered

    def spy(**kwargs):
        calls.append(kwargs["keys"])
        return registered(**kwargs)

    monkeypatch.setattr(script, "registered", spy)
    assert _incr(client, key, 1) == 1
    assert calls == []  # not traced: the pooled connection directly
    span = TracerProvider().get_tracer("test").start_span("order", context=Context())  # a root: sampled
    with use_span(span, end_on_exit=True):
        assert _incr(client, key, 1) == 2
    assert calls == [[key]]
