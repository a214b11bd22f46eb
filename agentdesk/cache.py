"""Django's caches with an expiring counter (``incr_expiring``); Redis on one connection
pool per process, the counter there in one round trip.

Django keeps a cache object per thread (``caches`` is an asgiref ``Local``) and each one
builds its own redis-py connection pool. Under ASGI every request runs in a thread of its
own, so with the stock backend every request opened a new TCP connection to Redis (and
redis-py reads package metadata for each new connection). Here every cache object of a
process shares the pools of its server list; redis-py's pool is thread-safe and re-creates
its connections after a fork.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_POOLS: dict[tuple[Any, ...], dict[int, Any]] = {}
_CLIENTS: dict[tuple[Any, ...], dict[int, Any]] = {}
_LOCK = threading.Lock()


class SharedPoolClient(RedisCacheClient):
    """``RedisCacheClient`` whose pools live in the process, not in the instance."""

    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, **options)
        identity = (tuple(servers), tuple(sorted((k, repr(v))
                                                 for k, v in self._pool_options.items())))
        with _LOCK:
            self._pools = _POOLS.setdefault(identity, {})
            self._clients = _CLIENTS.setdefault(identity, {})

    def _get_connection_pool(self, write: bool) -> Any:
        with _LOCK:  # one pool per server even when threads ask for it at once
            return super()._get_connection_pool(write)

    def get_client(self, key: str | None = None, *, write: bool = False) -> Any:
        """A ``redis.Redis`` per pool, reused: Django builds a new one for every cache call
        (~340 dict insertions for its response callbacks); a client on a pool is
        thread-safe."""
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._client(connection_pool=self._get_connection_pool(write))
            self._clients[index] = client
        return client


class SharedPoolRedisCache(RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` on process-wide connection pools."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedPoolClient

    def incr_expiring(self, key: str, timeout: float | None = DEFAULT_TIMEOUT,
                      version: int | None = None) -> int:
        """Add one to ``key`` (created at 0) and set its expiry: INCR and EXPIRE in one
        MULTI/EXEC round trip, where ``add`` + ``incr`` took three."""
        key = self.make_and_validate_key(key, version=version)
        client = self._cache.get_client(key, write=True)
        pipe = client.pipeline(transaction=True)
        pipe.incr(key)
        seconds = self.get_backend_timeout(timeout)
        if seconds is not None:
            pipe.expire(key, max(1, int(seconds)))
        return int(pipe.execute()[0])


    def set_then_get(self, set_key: str, value: Any, timeout: float | None, get_key: str,
                     version: int | None = None) -> Any:
        """``set(set_key, value, timeout)``, then ``get(get_key)`` (None when missing): one
        round trip, a pipeline, where the two calls took two."""
        stored = self.make_and_validate_key(set_key, version=version)
        wanted = self.make_and_validate_key(get_key, version=version)
        serializer = self._cache._serializer
        pipe = self._cache.get_client(stored, write=True).pipeline(transaction=False)
        seconds = self.get_backend_timeout(timeout)
        if seconds == 0:
            pipe.delete(stored)
        else:
            pipe.set(stored, serializer.dumps(value), ex=seconds)
        pipe.get(wanted)
        got = pipe.execute()[1]
        return None if got is None else serializer.loads(got)


class CounterLocMemCache(LocMemCache):
    """The embedded default's process-memory cache, with the same counter."""

    def set_then_get(self, set_key: str, value: Any, timeout: float | None, get_key: str,
                     version: int | None = None) -> Any:
        """``set`` then ``get``, as ``SharedPoolRedisCache.set_then_get`` (in memory)."""
        self.set(set_key, value, timeout=timeout, version=version)
        return self.get(get_key, version=version)

    def incr_expiring(self, key: str, timeout: float | None = DEFAULT_TIMEOUT,
                      version: int | None = None) -> int:
        """Add one to ``key`` (created at 0 with ``timeout``); ``add`` and ``incr`` are
        each atomic, and a key that expires between them starts again at 1."""
        self.add(key, 0, timeout=timeout, version=version)
        try:
            return self.incr(key, version=version)
        except ValueError:
            self.set(key, 1, timeout=timeout, version=version)
            return 1
