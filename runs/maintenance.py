"""Periodic upkeep (celery beat): bring back runs whose worker died (giving back the budget
their dead calls held), and enforce the human-wait deadline of escalations."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agentdesk.runtime.outcomes import RunStatus

from . import budgets, enqueue, lifecycle, notifications
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
    the next tick leaves them alone while the new message waits in the queue; in the same
    transaction, the team-budget reservation the dead worker held for its call in flight is
    given back (once: ``budgets.release_held``), so its team is not blocked by it."""
    now = timezone.now()
    ids = runs_to_reap(now)
    for run_id in ids:
        with transaction.atomic():
            cleared = Run.objects.filter(
                Q(lease_expires_at__lt=now) | Q(lease_owner=""),
                pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
            ).update(lease_owner="", lease_expires_at=None, updated_at=now)
            if cleared:
                budgets.release_held(run_id)
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


def notify_thresholds(now=None) -> int:
    """Notifications no status change carries: SLA warnings (50 % / 90 % of an open
    escalation's time to decide gone) and the team budget at 80 % / 100 %."""
    now = now or timezone.now()
    return notifications.check_deadlines(now) + notifications.check_budgets(now)
