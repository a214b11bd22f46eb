"""Notifications: what a team's targets are told, and when — written to an outbox.

Events (``NotificationEvent``) and who writes them, each in the transaction of what it
reports, like the webhook rows (``runs.webhooks``):

- ``escalation.opened`` — a run paused for a human (``lifecycle.checkpoint``); only targets
  whose ``min_priority`` the escalation's priority reaches (lower is more urgent);
- ``run.failed`` — a run ended failed, whatever the reason (``lifecycle``);
- ``escalation.sla_50`` / ``escalation.sla_90`` — half, then nine tenths of the time
  between an escalation's opening and its human-wait deadline (the policy's
  ``human_timeout_seconds``) has gone by without a decision (``check_deadlines``, every
  15 s from celery beat; the escalation's ``sla_notified`` is raised by a conditional
  UPDATE, so each warning is written once, and one already past 90 % skips the 50 %);
- ``budget.80`` / ``budget.100`` — the team's spend today (UTC) reached 80 % / 100 % of its
  daily budget plus today's extensions (``check_budgets``, same tick), or a run was stopped
  by the team budget (``lifecycle``: that is 100 %, even when the reservation that was
  refused left the recorded spend a little under the budget). Extending the budget makes a
  new total, so its thresholds can be reached again that day.

One row per (target, event key): recording twice is harmless. The rows are sent by
``runs.notifier`` after commit (rate limit, digests, retries). Each message carries an
absolute link into the console (``AGENTDESK_PUBLIC_URL``): the page still asks for a login.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from agentdesk.runtime.options import HumanTimeoutAction

from . import enqueue
from .models import (
    Escalation,
    NotificationDelivery,
    NotificationEvent,
    NotificationTarget,
    Run,
    Team,
    TeamDailySpend,
)

log = logging.getLogger(__name__)

SLA_STAGES = (90, 50)  # percent of the time to decide gone; the highest reached is sent
BUDGET_STAGES = (100, 80)
EVENT_OF_SLA = {50: NotificationEvent.SLA_50, 90: NotificationEvent.SLA_90}
EVENT_OF_BUDGET = {80: NotificationEvent.BUDGET_80, 100: NotificationEvent.BUDGET_100}


def link(path: str) -> str:
    """An absolute URL into the console."""
    return settings.AGENTDESK_PUBLIC_URL.rstrip("/") + path


def escalation_link(esc: Escalation) -> str:
    return link(reverse("escalation_detail", args=[esc.pk]))


def targets_for(team_id: int, event: str) -> list[NotificationTarget]:
    """The team's enabled targets that want ``event`` (few per team: filtered here, which
    works the same on SQLite and Postgres)."""
    rows = NotificationTarget.objects.filter(team_id=team_id, enabled=True)
    return [t for t in rows if t.wants(event)]


def record(targets: list[NotificationTarget], *, event: str, key: str, title: str, body: str,
           url: str = "", escalation: Escalation | None = None,
           run: Run | None = None) -> list[NotificationDelivery]:
    """Inside the caller's transaction: one outbox row per target (none twice for one key),
    each target's sender woken after commit."""
    made = []
    for target in targets:
        if NotificationDelivery.objects.filter(target=target, key=key[:120]).exists():
            continue  # recorded already (a periodic check sees the same threshold each tick)
        try:
            with transaction.atomic():
                made.append(NotificationDelivery.objects.create(
                    target=target, team_id=target.team_id, event=event, key=key[:120],
                    title=title[:300], body=body, link=url, escalation=escalation, run=run,
                    next_attempt_at=timezone.now()))
        except IntegrityError:  # recorded meanwhile by a concurrent writer
            continue
        target_id = target.pk
        transaction.on_commit(lambda t=target_id: wake(t))
    return made


def wake(target_id: int) -> None:
    """Ask a worker to send the target's due notifications, a moment from now so that
    notifications firing together can go out as one digest (``runs.notifier``)."""
    try:
        enqueue.deliver_notifications(target_id, countdown=settings.NOTIFICATION_BATCH_SECONDS)
    except Exception:  # the periodic retry picks it up; never fail the caller's write
        log.exception("could not enqueue notifications of target %s", target_id)


# -- the events ----------------------------------------------------------------------------


def _escalation_text(esc: Escalation, run: Run) -> str:
    lines = [f"Run #{run.pk} of {run.agent.slug} ({run.team.name}) asks:",
             esc.question.strip()]
    if esc.proposed_tool:
        args = ", ".join(f"{k}={v}" for k, v in sorted((esc.proposed_args or {}).items()))
        lines.append(f"Proposed: {esc.proposed_tool}({args})")
    facts = [f"priority {esc.priority}"]
    if esc.confidence is not None:
        facts.append(f"confidence {esc.confidence:.2f}")
    if esc.deadline_at:
        facts.append(f"decide by {esc.deadline_at:%Y-%m-%d %H:%M} UTC")
    if esc.assigned_to_id:
        facts.append(f"assigned to {esc.assigned_to.get_username()}")
    lines.append(" · ".join(facts))
    return "\n".join(lines)


def escalation_opened(esc: Escalation, run: Run) -> list[NotificationDelivery]:
    """A new escalation, to the targets whose threshold its priority reaches."""
    event = NotificationEvent.ESCALATION_OPENED
    targets = [t for t in targets_for(esc.team_id, event) if esc.priority <= t.min_priority]
    if not targets:
        return []
    url = escalation_link(esc)
    title = f"Needs a human: {esc.reason.replace('_', ' ')} (escalation #{esc.pk})"
    return record(targets, event=event, key=f"esc:{esc.pk}:opened", title=title,
                  body=f"{_escalation_text(esc, run)}\n{url}", url=url, escalation=esc,
                  run=run)


def sla_reached(esc: Escalation, percent: int) -> list[NotificationDelivery]:
    event = EVENT_OF_SLA[percent]
    targets = targets_for(esc.team_id, event)
    if not targets:
        return []
    run = esc.run
    url = escalation_link(esc)
    minutes = max(0, round((esc.deadline_at - timezone.now()).total_seconds() / 60))
    fallback = run.policy.human_timeout_action == HumanTimeoutAction.FALLBACK
    then = "the fallback answer is sent" if fallback else "the run fails (human_timeout)"
    title = f"{percent}% of the time to decide is gone: escalation #{esc.pk}"
    body = (f"No decision yet; about {minutes} min left, until "
            f"{esc.deadline_at:%Y-%m-%d %H:%M} UTC. Then {then}.\n"
            f"{_escalation_text(esc, run)}\n{url}")
    return record(targets, event=event, key=f"esc:{esc.pk}:sla_{percent}", title=title,
                  body=body, url=url, escalation=esc, run=run)


def run_failed(run: Run) -> list[NotificationDelivery]:
    event = NotificationEvent.RUN_FAILED
    targets = targets_for(run.team_id, event)
    if not targets:
        return []
    url = link(reverse("run_detail", args=[run.pk]))
    reason = run.reason or "unknown"
    title = f"Run #{run.pk} failed: {reason.replace('_', ' ')}"
    body = (f"Run #{run.pk} of {run.agent.slug} ({run.team.name}) ended failed "
            f"({reason}) after {run.step_count} steps.\n{url}")
    return record(targets, event=event, key=f"run:{run.pk}:failed:{run.step_count}",
                  title=title, body=body, url=url, run=run)


def budget_reached(team: Team, percent: int, *, day, spent: Decimal, total: Decimal,
                   run: Run | None = None) -> list[NotificationDelivery]:
    event = EVENT_OF_BUDGET[percent]
    targets = targets_for(team.pk, event)
    if not targets:
        return []
    url = link(reverse("dashboard"))
    what = "used up" if percent >= 100 else f"{percent}% used"
    title = f"{team.name}: today's budget {what}"
    body = (f"Spent {spent:.4f} of {total:.4f} USD on {day:%Y-%m-%d} (UTC)."
            + (f" Run #{run.pk} was stopped by the team budget and waits for a team admin."
               if run is not None else "")
            + f"\n{url}")
    return record(targets, event=event, key=f"budget:{day:%Y-%m-%d}:{percent}:{total:.4f}",
                  title=title, body=body, url=url, run=run)


def team_budget_stopped(run: Run) -> list[NotificationDelivery]:
    """A run paused on the team budget: the day's budget counts as used up."""
    day = timezone.now().date()
    row = TeamDailySpend.objects.filter(team_id=run.team_id, day=day).first()
    budget = run.team.daily_budget_usd
    if budget is None:
        return []
    extra = row.extra_usd if row else Decimal(0)
    spent = row.spent_usd if row else Decimal(0)
    return budget_reached(run.team, 100, day=day, spent=spent, total=budget + extra, run=run)


# -- periodic checks (celery beat, through runs.maintenance) -------------------------------


def _teams_wanting(events: set[str]) -> set[int]:
    """Teams with an enabled target that wants any of ``events``."""
    return {t.team_id for t in NotificationTarget.objects.filter(enabled=True).only(
        "team_id", "events") if set(t.events or []) & events}


def sla_stage(esc: Escalation, now: datetime) -> int:
    """The highest SLA stage (50 or 90) an open escalation has reached, else 0."""
    if esc.deadline_at is None:
        return 0
    window = (esc.deadline_at - esc.created_at).total_seconds()
    if window <= 0:
        return SLA_STAGES[0]
    gone = (now - esc.created_at).total_seconds() / window
    return next((p for p in SLA_STAGES if gone >= p / 100), 0)


def check_deadlines(now: datetime | None = None) -> int:
    """SLA warnings for open escalations that reached 50 % or 90 % of their time to decide.
    Returns how many stages were newly reached."""
    now = now or timezone.now()
    reached = 0
    teams = _teams_wanting({e.value for e in EVENT_OF_SLA.values()})
    if not teams:  # nobody listens: nothing to compute (a target added later catches up)
        return 0
    rows = (Escalation.objects.filter(status=Escalation.Status.OPEN, deadline_at__isnull=False,
                                      sla_notified__lt=SLA_STAGES[0], team_id__in=teams)
            .only("pk", "created_at", "deadline_at", "sla_notified")[:2000])
    for esc in rows:
        stage = sla_stage(esc, now)
        if stage <= esc.sla_notified:
            continue
        with transaction.atomic():
            won = Escalation.objects.filter(pk=esc.pk, status=Escalation.Status.OPEN,
                                            sla_notified__lt=stage).update(sla_notified=stage)
            if won:
                full = Escalation.objects.select_related(
                    "run", "run__agent", "run__team", "assigned_to").get(pk=esc.pk)
                sla_reached(full, stage)
                reached += 1
    return reached


def check_budgets(now: datetime | None = None) -> int:
    """Budget warnings for teams with a daily budget and a target that wants them."""
    now = now or timezone.now()
    day = now.date()
    team_ids = _teams_wanting({e.value for e in EVENT_OF_BUDGET.values()})
    sent = 0
    for team in Team.objects.filter(pk__in=team_ids, daily_budget_usd__isnull=False):
        row = TeamDailySpend.objects.filter(team=team, day=day).first()
        if row is None or team.daily_budget_usd is None:
            continue
        total = team.daily_budget_usd + row.extra_usd
        if total <= 0:
            continue
        stage = next((p for p in BUDGET_STAGES if row.spent_usd * 100 >= total * p), 0)
        if stage:
            with transaction.atomic():
                sent += len(budget_reached(team, stage, day=day, spent=row.spent_usd,
                                           total=total))
    return sent
