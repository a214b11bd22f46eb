"""The response cache on Django's cache framework (Redis in production, memory embedded).

One instance serves one run's time slice, and its keys are scoped to the run's team: a reply
cached for one team is never served to another, whatever they send (the runtime's keys
already carry the policy's version).

A reply is stored with the slice's next lookup, in that lookup's round trip (a pipeline:
SET, then GET), or by ``flush`` when the slice ends: a model step then pays one round trip
to Redis, not two (``make bench``, step overhead). Until then only this slice could want it,
and it asks through ``get``, which writes it first. A worker that dies in between loses an
entry of a cache, nothing more.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import caches


class DjangoResponseCache:
    def __init__(self, team_id: int, alias: str = "default") -> None:
        self.cache = caches[alias]
        self.prefix = f"team{team_id}:"
        self._pending: tuple[str, dict[str, Any], int] | None = None

    def get(self, key: str) -> dict[str, Any] | None:
        pending, self._pending = self._pending, None
        if pending is None:
            return self.cache.get(self.prefix + key)
        stored, value, ttl = pending
        return self.cache.set_then_get(stored, value, ttl, self.prefix + key)

    def set(self, key: str, value: dict[str, Any], ttl_seconds: int) -> None:
        self.flush()  # one waits at most: a second set writes the first
        self._pending = (self.prefix + key, value, ttl_seconds)

    def flush(self) -> None:
        """Write the reply that waits for a lookup (the slice is over)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self.cache.set(*pending)
