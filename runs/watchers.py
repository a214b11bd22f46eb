"""Who is listening: a live group is *watched* while a websocket in it said so lately.

Rendering a run's progress fragment costs about a millisecond a step, and most steps of
most runs happen with nobody looking (``make bench``, step overhead). So every consumer
marks its groups in the cache when it joins them and again every ``heartbeat_seconds()``
while it stays, each mark living ``LIVE_WATCH_SECONDS``; a writer asks ``watched(group)``
(one cache read) before it renders anything for that group.

The mark errs towards rendering: a group stays watched for up to ``LIVE_WATCH_SECONDS``
after its last listener left. The other way round cannot happen while a listener's event
loop keeps its heartbeat, and a page that connects misses nothing: it was rendered with the
run as it was, and the next step is published to it. The embedded mode's cache is the
process's own memory, as its channel layer is: a mark is seen where its events are heard.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache


def _key(group: str) -> str:
    return f"live:watch:{group}"


def heartbeat_seconds() -> float:
    """How often a listener renews its marks: three times per mark's life."""
    return settings.LIVE_WATCH_SECONDS / 3


def mark(groups: Iterable[str]) -> None:
    """Someone listens to ``groups`` now (a consumer joined them, or is still there)."""
    # whole seconds: Redis expiries are (Django's backend truncates, and 0.6 would be 0)
    cache.set_many({_key(g): 1 for g in groups}, timeout=math.ceil(settings.LIVE_WATCH_SECONDS))


def watched(group: str) -> bool:
    return cache.get(_key(group)) is not None
