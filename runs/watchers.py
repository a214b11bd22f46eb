"""Who is listening: a run is *watched* while a page of it said so lately.

Rendering a run's progress fragment costs about a millisecond a step, and most steps of
most runs happen with nobody looking (``make bench``, step overhead). So a run page's
websocket marks its run when it connects and again every ``heartbeat_seconds()`` while it
stays: ``Run.watched_until``, ``LIVE_WATCH_SECONDS`` ahead. A checkpoint reads the mark back
in its own statement (``lifecycle.checkpoint``), so deciding whether to render a step costs
no round trip; ``watched(run)`` is a comparison.

The mark errs towards rendering: a run stays watched for up to ``LIVE_WATCH_SECONDS`` after
its last page left. The other way round cannot happen while a listener's event loop keeps
its heartbeat. The team's inbox is not marked: its events are small signals, sent always.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import Run


def heartbeat_seconds() -> float:
    """How often a listener renews its mark: three times per mark's life."""
    return settings.LIVE_WATCH_SECONDS / 3


def mark(run_id: int) -> None:
    """Someone has the run's page open now (its socket joined, or is still there)."""
    until = timezone.now() + timedelta(seconds=settings.LIVE_WATCH_SECONDS)
    Run.objects.filter(pk=run_id).update(watched_until=until)


def watched(run: Run) -> bool:
    """Was the run watched when ``run`` was last read or checkpointed?"""
    return run.watched_until is not None and run.watched_until > timezone.now()
