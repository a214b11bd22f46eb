"""The audit log: who did what to which object, written in the transaction of the change.

One helper, so every writer (decisions, claims, cancels) names actors and targets the same
way; rows are append-only and read back team-scoped by ``selectors.audit_events_for``.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import models

from . import statements
from .models import Agent, ApiKey, AuditEvent, Policy, Rule, Team

log = logging.getLogger(__name__)

# What the audit page calls each action (unknown actions are shown as they are).
ACTION_LABELS = {
    "escalation.decided": "decided",
    "escalation.claimed": "claimed",
    "escalation.released": "released",
    "escalation.claim_taken_over": "took over claim",
    "escalation.assigned": "assigned",
    "escalation.reassigned": "reassigned",
    "escalation.unassigned": "unassigned",
    "run.submitted": "submitted run",
    "run.cancelled": "cancelled run",
    "run.aborted": "aborted run",
    "run.waiting_human": "run asked a human",
    "run.succeeded": "run succeeded",
    "run.failed": "run failed",
    "run.expired": "run timed out waiting",
    "run.crashed": "run crashed",
    "run.reviewed": "reviewed run",
    "policy.threshold_applied": "applied calibrated threshold",
    "team.budget_extended": "extended team budget for the day",
    "team.webhook_secret_rotated": "rotated webhook secret",
    "api_key.created": "created API key",
    "api_key.revoked": "revoked API key",
    "api_key.deleted": "deleted API key",
    # admin edits of what runs are made of (``record_change``)
    "policy.created": "created policy",
    "policy.changed": "changed policy",
    "policy.deleted": "deleted policy",
    "rule.created": "created rule",
    "rule.changed": "changed rule",
    "rule.deleted": "deleted rule",
    "agent.created": "created agent",
    "agent.changed": "changed agent",
    "agent.deleted": "deleted agent",
    "team.created": "created team",
    "team.changed": "changed team",
    "membership.created": "added member",
    "membership.changed": "changed member role",
    "membership.deleted": "removed member",
    "notification_target.created": "added notification target",
    "notification_target.changed": "changed notification target",
    "notification_target.deleted": "removed notification target",
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
    return statements.insert(AuditEvent(  # compiled once: every writer records events
        team_id=team_id, actor=actor, api_key_id=api_key_id, action=action,
        target_type=target._meta.model_name, target_id=str(target.pk), detail=detail or {},
    ))


def actor_name(user=None, api_key_id: int | None = None) -> str:
    """How a decision's author is shown and told to the loser of a race."""
    if user is not None and getattr(user, "is_authenticated", False):
        return user.get_username()
    key = ApiKey.objects.filter(pk=api_key_id).only("name").first() if api_key_id else None
    return f"api-key:{key.name}" if key else "api-key"


# -- admin changes: what an object was and what it became ----------------------------------

# Never copied into the log: the key's hash; a secret is shown only as set or changed.
HIDDEN_FIELDS = {"id", "hashed_key", "updated_at", "created_at", "last_used_at"}
SECRET_FIELDS = {"webhook_secret", "webhook_secret_previous",
                 "destination"}  # a notification target's URL (it carries tokens)
# What a model's events are called (``apikey`` reads better as ``api_key``).
TARGET_NAMES = {"apikey": "api_key", "notificationtarget": "notification_target"}


def field_values(obj: models.Model) -> dict[str, Any]:
    """The object's audited fields as JSON-safe values: a Decimal as a string with the
    column's decimal places (so 1 and 1.0000 are the same value), a date as ISO text, a
    foreign key as the related object's name, a secret as "(set)" or ""."""
    values: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.name in HIDDEN_FIELDS:
            continue
        value = field.value_from_object(obj)
        if field.name in SECRET_FIELDS:
            value = "(set)" if value else ""
        elif field.is_relation:
            value = str(getattr(obj, field.name)) if value is not None else None
        elif isinstance(value, Decimal):
            places = getattr(field, "decimal_places", None)
            value = str(value.quantize(Decimal(1).scaleb(-places)) if places else value)
        elif isinstance(value, datetime | date):
            value = value.isoformat()
        values[field.name] = value
    return values


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Only the fields that differ, as ``{"before": {...}, "after": {...}}``; an object
    created has an empty before, one deleted an empty after."""
    if not before or not after:
        return {"before": before, "after": after}
    keys = [k for k in after if before.get(k) != after[k]]
    after_shown = {k: after[k] for k in keys}
    for k in keys:  # a secret that was set and is set again still says it changed
        if k in SECRET_FIELDS and after[k]:
            after_shown[k] = "(changed)"
    return {"before": {k: before.get(k) for k in keys}, "after": after_shown}


def teams_of(obj: models.Model) -> set[int]:
    """The teams whose audit log shows a change to ``obj``: a team itself, an object's own
    team, and for a policy (and its rules) its team and every team with an agent using it."""
    if isinstance(obj, Team):
        return {obj.pk} if obj.pk else set()
    policy_id = obj.pk if isinstance(obj, Policy) else getattr(obj, "policy_id", None)
    if isinstance(obj, Policy | Rule):
        own = {obj.team_id} if isinstance(obj, Policy) and obj.team_id else set(
            Policy.objects.filter(pk=policy_id).values_list("team_id", flat=True))
        return own | set(Agent.objects.filter(policy_id=policy_id)
                         .values_list("team_id", flat=True))
    team_id = getattr(obj, "team_id", None)
    return {team_id} if team_id else set()


def record_change(
    *,
    obj: models.Model,
    verb: str,
    actor,
    before: dict[str, Any],
    after: dict[str, Any],
    target_id: Any = None,
    team_ids: set[int] = frozenset(),
) -> list[AuditEvent]:
    """Record an admin's create / change / delete of ``obj`` in each team it concerns, with
    only the changed fields. ``target_id`` and ``team_ids`` are for an object already
    deleted (its pk is gone) or moved between teams (both teams see the move).

    Nothing is written for a change of nothing, nor for an object of no team (a model
    profile): the audit log is per team. That case is logged instead."""
    diff = changed(before, after)
    if not diff["before"] and not diff["after"]:
        return []
    kind = obj._meta.model_name
    action = f"{TARGET_NAMES.get(kind, kind)}.{verb}"
    target_id = str(target_id if target_id is not None else obj.pk)
    teams = set(team_ids) | teams_of(obj)
    # a deleted team took its audit log with it (the rows cascade): nowhere to write
    teams = set(Team.objects.filter(pk__in=teams).values_list("pk", flat=True))
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if not teams:
        log.info("%s %s:%s by %s concerns no team: not in any team's audit log", action, kind,
                 target_id, getattr(actor, "pk", None))
        return []
    detail = {"object": str(obj), **diff}
    return [
        AuditEvent.objects.create(team_id=team_id, actor=actor, action=action,
                                  target_type=TARGET_NAMES.get(kind, kind),
                                  target_id=target_id, detail=detail)
        for team_id in sorted(teams)
    ]


def changes(detail: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(field, before, after)`` for each field an admin change recorded, for display."""
    before, after = detail.get("before") or {}, detail.get("after") or {}
    return [(name, before.get(name), after.get(name)) for name in {**before, **after}]
