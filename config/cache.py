"""Django's Redis cache, with one Redis client per connection pool instead of one per call.

Django's backend builds a `redis.Redis` for every cache operation; redis-py fills a table of
response callbacks in each constructor, which cost the hot path more CPU than the Redis
round trips themselves (seen with cProfile on order acceptance). Clients are thread-safe
and share the pool, so one per pool does the same work.
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


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


def redis_client():
    """The default cache's Redis client (thread-safe, pooled), or None when the cache is not
    Redis: for the few operations Django's cache API has no word for (scripts)."""
    from django.core.cache import caches

    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    return backend._cache.get_client(write=True)


_scripts: dict[str, object] = {}


def redis_script(client, source: str):
    """A registered Lua script, called as `script(keys=..., args=..., client=client)`: it runs
    by its SHA and loads itself again after a Redis restart. One object per script, whichever
    client (each thread has its own) runs it."""
    script = _scripts.get(source)
    if script is None:
        script = _scripts[source] = client.register_script(source)
    return script
