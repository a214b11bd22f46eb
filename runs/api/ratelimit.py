"""Per-key rate limit: a fixed one-minute window counted in Django's cache (Redis in
production, so every web process shares one count; process memory on the embedded default).

``cache.add`` + ``cache.incr`` are atomic on both backends, so concurrent requests can
never all see the last free slot."""

from __future__ import annotations

import math
import time

from django.core.cache import cache

WINDOW_SECONDS = 60


def hit(key_id: int, limit: int, now: float | None = None) -> float | None:
    """Count one request; None when allowed, else seconds until the window resets."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    name = f"ratelimit:{key_id}:{window}"
    cache.add(name, 0, timeout=WINDOW_SECONDS * 2)
    try:
        count = cache.incr(name)
    except ValueError:  # expired between add and incr
        cache.set(name, 1, timeout=WINDOW_SECONDS * 2)
        count = 1
    if count <= limit:
        return None
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
