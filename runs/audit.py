"""The audit log: who did what to which object, written in the transaction of the change.

One helper, so every writer (decisions, claims, cancels) names actors and targets the same
way; rows are append-only and read back team-scoped by ``selectors.audit_events_for``.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from .models import ApiKey, AuditEvent

# What the audit page calls each action (unknown actions are shown as they are).
ACTION_LABELS = {
    "escalation.decided": "decided",
    "escalation.claimed": "claimed",
    "escalation.released": "released",
    "escalation.claim_taken_over": "took over claim",
    "run.submitted": "submitted run",
    "run.cancelled": "cancelled run",
    "run.aborted": "aborted run",
    "run.waiting_human": "run asked a human",
    "run.succeeded": "run succeeded",
    "run.failed": "run failed",
    "run.expired": "run timed out waiting",
    "run.crashed": "run crashed",
    "api_key.created": "created API key",
    "api_key.revoked": "revoked API key",
}


def record(
    *,
    team_id: int,
    action: str,
    target: models.Model,
    actor=None,
    api_key_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Call inside the writer's transaction: it commits (or not) with it."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEvent.objects.create(
        team_id=team_id, actor=actor, api_key_id=api_key_id, action=action,
        target_type=target._meta.model_name, target_id=str(target.pk), detail=detail or {},
    )


def actor_name(user=None, api_key_id: int | None = None) -> str:
    """How a decision's author is shown and told to the loser of a race."""
    if user is not None and getattr(user, "is_authenticated", False):
        return user.get_username()
    key = ApiKey.objects.filter(pk=api_key_id).only("name").first() if api_key_id else None
    return f"api-key:{key.name}" if key else "api-key"
