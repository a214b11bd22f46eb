"""Writes: applying the threshold calibration suggests to the agent's policy, in one click.

The suggestion is computed again here from the labels as they are now; if it is no longer
the one the admin saw (new labels came in), nothing changes and the admin is told to look
again. The policy row changes with a conditional UPDATE on the threshold it had, so two
admins applying at once change it once; each team with an agent on the policy gets an audit
row with the value before and after. Runs already started keep their policy snapshot; runs
submitted afterwards snapshot the new threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from . import audit, calibrations
from .errors import Conflict, Forbidden, Invalid
from .models import Policy


@dataclass(frozen=True)
class Applied:
    policy: Policy
    before: float
    after: float


def apply_suggested(*, user, agent_id: int, tier: str, seen: float) -> Applied:
    """Set the agent's policy ``confidence_threshold`` to the tier's suggested threshold.
    ``seen`` is the suggestion the admin confirmed. Raises Forbidden (not an admin of the
    policy's team, nor a superuser), Invalid (no suggestion: too few labels, or already applied)
    and Conflict (the suggestion or the policy changed since the page was loaded)."""
    tuned = calibrations.one_for(user, agent_id, tier)
    policy = tuned.policy
    if not tuned.may_apply:
        raise Forbidden("Only an admin of the policy's team (or a superuser) may change its "
                        "threshold.")
    suggestion = tuned.suggestion
    if suggestion is None:
        raise Invalid(f"No threshold to apply: {tuned.no_suggestion}")
    if abs(suggestion - seen) > 1e-9:
        raise Conflict(f"The suggestion changed since the page was loaded: it is now "
                       f"{suggestion:.2f}. Look at it again before applying.")
    before = policy.confidence_threshold
    if not tuned.applicable:
        raise Invalid(f"{policy.name} already uses {suggestion:.2f}.")
    with transaction.atomic():
        changed = Policy.objects.filter(pk=policy.pk, confidence_threshold=before).update(
            confidence_threshold=suggestion, updated_at=timezone.now())
        if not changed:
            raise Conflict(f"{policy.name}'s threshold changed meanwhile; look again.")
        policy.confidence_threshold = suggestion
        c = tuned.calibration
        detail = {
            "object": str(policy), "before": {"confidence_threshold": before},
            "after": {"confidence_threshold": suggestion}, "agent": tuned.agent.slug,
            "tier": tier, "labels": c.count, "ece": c.ece,
            "interval": list(c.threshold_interval) if c.threshold_interval else None,
            "escalation_rate": c.escalation_rate,
            "confidently_wrong_rate": c.confidently_wrong_rate,
            "target": policy.confidently_wrong_target,
        }
        for team_id in sorted(audit.teams_of(policy)):
            audit.record(team_id=team_id, action="policy.threshold_applied", target=policy,
                         actor=user, detail=detail)
    return Applied(policy=policy, before=before, after=suggestion)

