"""The response cache on Django's cache framework (Redis in production, memory embedded)."""

from __future__ import annotations

from typing import Any

from django.core.cache import caches


class DjangoResponseCache:
    def __init__(self, alias: str = "default") -> None:
        self.cache = caches[alias]

    def get(self, key: str) -> dict[str, Any] | None:
        return self.cache.get(key)

    def set(self, key: str, value: dict[str, Any], ttl_seconds: int) -> None:
        self.cache.set(key, value, ttl_seconds)
