"""Notifications: a team's targets (Slack, Teams, email, a JSON endpoint…) and the outbox of
messages owed to each, delivered by ``runs.notifier`` with retries, a per-target rate limit
and digests."""

from __future__ import annotations

from django.db import models

from .escalations import Escalation
from .runs import Run
from .teams import Team


class NotificationEvent(models.TextChoices):
    """What a target can be told about."""

    ESCALATION_OPENED = "escalation.opened", "new escalation (at or above the priority)"
    SLA_50 = "escalation.sla_50", "50% of the time to decide gone, no decision"
    SLA_90 = "escalation.sla_90", "90% of the time to decide gone, no decision"
    RUN_FAILED = "run.failed", "run failed"
    BUDGET_80 = "budget.80", "team budget 80% used"
    BUDGET_100 = "budget.100", "team budget used up"


def all_events() -> list[str]:
    return [e.value for e in NotificationEvent]


class NotificationTarget(models.Model):
    """Where a team's notifications go. ``destination`` is a secret (it often holds a token):
    admin shows it masked once saved, and it is never logged."""

    class Priority(models.IntegerChoices):
        # Escalation priorities (``runs.claims``): lower is more urgent.
        URGENT = 10, "urgent only (approvals, unknown or failed tool outcomes)"
        BOUNDS = 20, "urgent and bounds hit (steps, time, tokens, cost, budget, loops)"
        LOW_CONFIDENCE = 30, "also low confidence"
        ALL = 50, "every escalation"

    team = models.ForeignKey(Team, on_delete=models.CASCADE,
                             related_name="notification_targets")
    name = models.CharField(max_length=100, help_text="e.g. “#support-oncall on Slack”.")
    destination = models.TextField(
        verbose_name="URL",
        help_text="An apprise URL (slack://…, msteams://…, discord://…, mailto://…, "
                  "json://host/path, form://…) or email:ops@example.com,lead@example.com "
                  "to send through this server's own mail settings. A secret: shown masked "
                  "once saved.")
    events = models.JSONField(default=all_events, blank=True,
                              help_text="The events this target is told about.")
    min_priority = models.PositiveSmallIntegerField(
        choices=Priority.choices, default=Priority.ALL,
        verbose_name="new escalations at or above",
        help_text="Which new escalations are sent (priority 10 is the most urgent).")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Delivery bookkeeping (``runs.notifier``), not edited in admin: who is sending now (a
    # lease, so two workers never send to one target at once), and the rate-limit window.
    sending_until = models.DateTimeField(null=True, blank=True, editable=False)
    window_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    window_count = models.PositiveIntegerField(default=0, editable=False)

    def __str__(self) -> str:
        return f"{self.name} ({self.team.slug})"

    def wants(self, event: str) -> bool:
        return self.enabled and event in (self.events or [])


class NotificationDelivery(models.Model):
    """One notification owed to one target: written in the transaction of what it reports
    (an outbox row, like ``WebhookDelivery``), sent alone or in a digest, retried with
    backoff until delivered or failed for good."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    target = models.ForeignKey(NotificationTarget, on_delete=models.CASCADE,
                               related_name="deliveries")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=40, choices=NotificationEvent.choices)
    # Makes recording idempotent: one row per (target, what happened), e.g. "esc:12:sla_50".
    key = models.CharField(max_length=120)
    title = models.CharField(max_length=300)
    body = models.TextField()
    link = models.URLField(max_length=500, blank=True, default="")
    escalation = models.ForeignKey(Escalation, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The message it last went out in: rows sent together in a digest share it.
    message_id = models.CharField(max_length=32, blank=True, default="")
    in_digest = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "notification deliveries"
        indexes = [models.Index(fields=["target", "status", "next_attempt_at"],
                                name="notification_due")]
        constraints = [models.UniqueConstraint(fields=["target", "key"],
                                               name="one_notification_per_event")]

    def __str__(self) -> str:
        return f"{self.event} → {self.target.name} ({self.status})"
