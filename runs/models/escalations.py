"""Escalations (what an operator must decide) and the audit log of who did what."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from agentdesk.runtime.outcomes import Reason

from .common import choices_of
from .runs import Run
from .teams import ApiKey, Team


class Escalation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        DECIDED = "decided"
        EXPIRED = "expired"
        CANCELLED = "cancelled"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="escalations")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="escalations",
                             db_index=False)  # the esc_* indexes start with it
    step_index = models.PositiveIntegerField()
    reason = models.CharField(max_length=40, choices=choices_of(Reason))
    question = models.TextField()
    proposed_tool = models.CharField(max_length=100, blank=True, default="")
    proposed_args = models.JSONField(default=dict, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    context = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    decision = models.CharField(max_length=20, blank=True, default="")
    decision_message = models.TextField(blank=True, default="")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+", db_index=False)
    decided_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    priority = models.PositiveSmallIntegerField(
        default=50, help_text="Lower is more urgent (approvals and failures first)."
    )
    claimed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+", db_index=False)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Who is responsible for it (``runs.assignment``): shown to everyone, listed under the
    # assignee's "Mine". Unlike a claim it does not expire and does not stop others deciding.
    assigned_to = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+",
                                    db_index=False)
    assigned_at = models.DateTimeField(null=True, blank=True)
    # The SLA warnings already sent (0, 50 or 90 percent of the time to decide gone).
    sla_notified = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["team", "status", "-created_at"], name="esc_inbox"),
            models.Index(fields=["status", "deadline_at"], name="esc_deadline"),
            # the inbox (runs.selectors): a team's open rows in triage order, to the id
            models.Index(fields=["team", "status", "priority", "deadline_at", "id"],
                         name="esc_queue"),
            # the inbox's counts per reason, each stopping at a cap
            models.Index(fields=["team", "status", "reason"], name="esc_reason"),
            # the people on it: only rows that have one need an index entry
            *(models.Index(fields=[f], name=f"esc_{f}",
                           condition=models.Q(**{f"{f}__isnull": False}))
              for f in ("decided_by", "claimed_by", "assigned_to")),
        ]

    def __str__(self) -> str:
        return f"Escalation {self.pk} ({self.reason}, {self.status})"


class AuditEvent(models.Model):
    """Who did what, when: every decision, claim and API action, append-only."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="audit_events",
                             db_index=False)  # audit_recent starts with it
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+", db_index=False)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", db_index=False)
    action = models.CharField(max_length=40)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=40)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["team", "-created_at"], name="audit_recent"),
            # who did it: most events have no user, or no key, and need no index entry
            models.Index(fields=["actor"], name="audit_actor",
                         condition=models.Q(actor__isnull=False)),
            models.Index(fields=["api_key"], name="audit_api_key",
                         condition=models.Q(api_key__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"
