"""Periodic upkeep (celery beat): bring back runs whose worker died, and enforce the
human-wait deadline of escalations."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agentdesk.runtime.outcomes import RunStatus

from . import enqueue, lifecycle
from .models import Escalation, Run

log = logging.getLogger(__name__)


def runs_to_reap(now=None) -> list[int]:
    """Running runs whose lease expired, and queued runs nobody picked up for a while."""
    now = now or timezone.now()
    stale_queue = now - timedelta(seconds=settings.RUN_LEASE_SECONDS)
    return list(
        Run.objects.filter(
            Q(status=RunStatus.RUNNING, lease_expires_at__lt=now)
            | Q(status=RunStatus.RUNNING, lease_owner="", updated_at__lt=stale_queue)
            | Q(status=RunStatus.QUEUED, lease_owner="", updated_at__lt=stale_queue)
        ).values_list("pk", flat=True)[:1000]
    )


def reap_runs() -> int:
    """Re-enqueue stuck runs. Their expired lease is cleared and ``updated_at`` bumped, so
    the next tick leaves them alone while the new message waits in the queue."""
    now = timezone.now()
    ids = runs_to_reap(now)
    Run.objects.filter(pk__in=ids, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).filter(
        Q(lease_expires_at__lt=now) | Q(lease_owner="")
    ).update(lease_owner="", lease_expires_at=None, updated_at=now)
    for run_id in ids:
        enqueue.advance_run(run_id)
    if ids:
        log.info("re-enqueued %d runs", len(ids))
    return len(ids)


def expire_escalations(now=None) -> int:
    now = now or timezone.now()
    expired = 0
    due = Escalation.objects.filter(status=Escalation.Status.OPEN, deadline_at__lt=now)
    for esc_id in due.values_list("pk", flat=True)[:500]:
        expired += _expire(esc_id, now)
    return expired


def _expire(esc_id: int, now) -> int:
    """Close one overdue escalation (a conditional UPDATE: a decision racing the deadline
    wins or loses cleanly) and end its run as its policy says."""
    with transaction.atomic():
        won = Escalation.objects.filter(pk=esc_id, status=Escalation.Status.OPEN).update(
            status=Escalation.Status.EXPIRED, decided_at=now
        )
        if not won:
            return 0
        esc = Escalation.objects.select_related("run").get(pk=esc_id)
        lifecycle.expire(esc.run, expired=esc)
        return 1
