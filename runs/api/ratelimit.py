"""Per-key rate limit: a fixed one-minute window counted in Django's cache (Redis in
production, so every web process shares one count; process memory on the embedded default).

The count (``incr_expiring`` of ``agentdesk.cache``) is atomic on both backends, so
concurrent requests can never all see the last free slot; on Redis it is one round trip."""

from __future__ import annotations

import math
import time

from django.core.cache import cache

WINDOW_SECONDS = 60


def hit(key_id: int, limit: int, now: float | None = None) -> float | None:
    """Count one request; None when allowed, else seconds until the window resets."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    count = cache.incr_expiring(f"ratelimit:{key_id}:{window}", timeout=WINDOW_SECONDS * 2)
    if count <= limit:
        return None
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
