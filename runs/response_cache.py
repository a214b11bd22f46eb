"""The response cache on Django's cache framework (Redis in production, memory embedded).

One instance serves one run, and its keys are scoped to the run's team: a reply cached for
one team is never served to another, whatever they send (the runtime's keys already carry
the policy's version)."""

from __future__ import annotations

from typing import Any

from django.core.cache import caches


class DjangoResponseCache:
    def __init__(self, team_id: int, alias: str = "default") -> None:
        self.cache = caches[alias]
        self.prefix = f"team{team_id}:"

    def get(self, key: str) -> dict[str, Any] | None:
        return self.cache.get(self.prefix + key)

    def set(self, key: str, value: dict[str, Any], ttl_seconds: int) -> None:
        self.cache.set(self.prefix + key, value, ttl_seconds)
