"""Per-key rate limit: a fixed one-minute window counted in Django's cache (Redis in
production, so every web process shares one count; process memory on the embedded default).

The count (``incr_expiring`` of ``agentdesk.cache``) is atomic on both backends, so
concurrent requests can never all see the last free slot; on Redis it is one round trip.
``hit_and_read`` also reads one more cache entry in that same round trip: the API keys'
generation (``runs.api_keys``), so checking that a remembered key is still valid costs
nothing more than counting its request."""

from __future__ import annotations

import math
import time
from typing import Any

from django.core.cache import cache, caches

from agentdesk.cache import SharedPoolRedisCache

WINDOW_SECONDS = 60


def hit(key_id: int, limit: int, now: float | None = None) -> float | None:
    """Count one request; None when allowed, else seconds until the window resets."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    count = cache.incr_expiring(_counter(key_id, window), timeout=WINDOW_SECONDS * 2)
    return _verdict(count, limit, window, now)


def hit_and_read(key_id: int, limit: int, name: str) -> tuple[float | None, Any]:
    """``hit``, and the value of the cache entry ``name`` (None when absent), in one round
    trip on Redis: MULTI, INCR, EXPIRE, GET, EXEC. An integer value only (Django's Redis
    cache stores those as they are, so the raw reply is the value)."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    backend = caches["default"]
    if not isinstance(backend, SharedPoolRedisCache):
        count = backend.incr_expiring(_counter(key_id, window), timeout=WINDOW_SECONDS * 2)
        return _verdict(count, limit, window, now), backend.get(name)
    counter = backend.make_and_validate_key(_counter(key_id, window))
    pipe = backend._cache.get_client(counter, write=True).pipeline(transaction=True)
    pipe.incr(counter)
    pipe.expire(counter, WINDOW_SECONDS * 2)
    pipe.get(backend.make_and_validate_key(name))
    count, _, raw = pipe.execute()
    return _verdict(int(count), limit, window, now), None if raw is None else int(raw)


def _counter(key_id: int, window: int) -> str:
    return f"ratelimit:{key_id}:{window}"


def _verdict(count: int, limit: int, window: int, now: float) -> float | None:
    if count <= limit:
        return None
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
