"""Per-key rate limit: a fixed one-minute window counted in Django's cache (Redis in
production, so every web process shares one count; process memory on the embedded default).

The count is atomic on both backends, so concurrent requests can never all see the last
free slot. On Redis it is one round trip (INCR + EXPIRE in MULTI/EXEC, see
``agentdesk.cache``); elsewhere ``cache.add`` + ``cache.incr``."""

from __future__ import annotations

import math
import time

from django.core.cache import cache

WINDOW_SECONDS = 60


def hit(key_id: int, limit: int, now: float | None = None) -> float | None:
    """Count one request; None when allowed, else seconds until the window resets."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    count = _count(f"ratelimit:{key_id}:{window}")
    if count <= limit:
        return None
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))


def _count(name: str) -> int:
    incr_expiring = getattr(cache, "incr_expiring", None)
    if incr_expiring is not None:
        return incr_expiring(name, timeout=WINDOW_SECONDS * 2)
    cache.add(name, 0, timeout=WINDOW_SECONDS * 2)
    try:
        return cache.incr(name)
    except ValueError:  # expired between add and incr
        cache.set(name, 1, timeout=WINDOW_SECONDS * 2)
        return 1
