"""Django's Redis cache, with one Redis client per connection pool instead of one per call.

Django's backend builds a `redis.Redis` for every cache operation; redis-py fills a table of
response callbacks in each constructor, which cost the hot path more CPU than the Redis
round trips themselves (seen with cProfile on order acceptance). Clients are thread-safe
and share the pool, so one per pool does the same work.
"""

from __future__ import annotations

import os
import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from opentelemetry import trace
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


class PooledClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class PooledRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = PooledClientRedisCacheClient


def redis_client(backend=None):
    """The default cache's Redis client (thread-safe, pooled), or None when the cache is not
    Redis: for the few operations Django's cache API has no word for (scripts). `backend`:
    the default cache, when the caller already holds it."""
    from django.core.cache import caches

    backend = backend or caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    return backend._cache.get_client(write=True)


_scripts: dict[str, Script] = {}


class Script:
    """A Lua script run by its SHA (loaded again after a Redis restart), called as
    `script(keys=..., args=..., client=client)` with any client of the pool.

    A call that is not traced sends EVALSHA on a connection of the calling thread's own and
    reads its reply: redis-py's command path around those two (the pool's checks, its retry
    wrapper, the reply's callbacks, the tracing hook) cost a sold-out answer more CPU than
    the round trip. A connection that fails is closed, so no half-read reply answers the next
    call, and the call goes again by redis-py's path, which retries as every command does; a
    reply that does not come within the cache's timeout fails the call at once. A traced call
    takes redis-py's path too, which records its span."""

    def __init__(self, client, source: str):
        self.registered = client.register_script(source)
        self.sha = self.registered.sha
        self._local = threading.local()

    def _connection(self, pool):
        held = getattr(self._local, "held", None)
        if held is None or held[0] is not pool or held[1] != os.getpid():  # new, or forked
            held = self._local.held = (pool, os.getpid(), pool.make_connection())
        return held[2]

    def __call__(self, *, keys: list, args: list, client):
        if trace.get_current_span().is_recording():
            return self.registered(keys=keys, args=args, client=client)
        connection = self._connection(client.connection_pool)
        try:
            connection.send_command("EVALSHA", self.sha, len(keys), *keys, *args)
            return connection.read_response()
        except NoScriptError:  # Redis restarted and forgot it: redis-py's path loads it
            pass
        except ResponseError:  # the script's own error, its reply read whole
            raise
        except RedisTimeoutError:  # Redis is slow to answer: asking again would double the wait
            connection.disconnect()
            raise
        except RedisConnectionError:
            connection.disconnect()
        except BaseException:
            connection.disconnect()
            raise
        return self.registered(keys=keys, args=args, client=client)


def redis_script(client, source: str) -> Script:
    """The one Script object of `source`, whichever client (each thread has its own) runs it."""
    script = _scripts.get(source)
    if script is None:
        script = _scripts[source] = Script(client, source)
    return script
