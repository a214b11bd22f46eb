"""Triage writes: an escalation's priority, and claims (who is working on it).

A claim tells other operators "I have this one". Claims are conditional UPDATEs, like
decisions: ``WHERE status = 'open' AND (claimed_by IS NULL OR claimed_at < stale)``, so
of two operators claiming at once exactly one row update matches; the other re-reads the
row and is told who won. A claim older than ``CLAIM_TIMEOUT_SECONDS`` is stale: anyone may
take it over (audited as such). While a claim is live, only its holder may decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.timesince import timesince

from agentdesk.runtime.outcomes import Reason

from . import audit, fragments, permissions
from .errors import ClaimedByOther, NotFound, NotOpen
from .events import publish_on_commit
from .models import Escalation

# Lower is more urgent: something is about to happen (or did) and waits for a yes/no first.
PRIORITY_BY_REASON = {
    Reason.APPROVAL_REQUIRED: 10,
    Reason.TOOL_OUTCOME_UNKNOWN: 10,
    Reason.TOOL_FAILED: 10,
    Reason.STEP_LIMIT: 20,
    Reason.TIME_LIMIT: 20,
    Reason.TOKEN_LIMIT: 20,
    Reason.COST_LIMIT: 20,
    Reason.TEAM_BUDGET: 20,
    Reason.MODEL_UNPRICED: 20,  # every run on the model stops here until an admin prices it
    Reason.LOOP_DETECTED: 20,
    Reason.LOW_CONFIDENCE: 30,
}
DEFAULT_PRIORITY = 50


def priority_for(reason: str) -> int:
    return PRIORITY_BY_REASON.get(reason, DEFAULT_PRIORITY)


def timeout_seconds() -> int:
    return int(getattr(settings, "CLAIM_TIMEOUT_SECONDS", 300))


def stale_before(now: datetime | None = None) -> datetime:
    """Claims taken before this moment are stale."""
    return (now or timezone.now()) - timedelta(seconds=timeout_seconds())


def is_stale(esc: Escalation, now: datetime | None = None) -> bool:
    return esc.claimed_at is not None and esc.claimed_at < stale_before(now)


def held_by_other(esc: Escalation, user) -> bool:
    """A live claim by someone else: the escalation is theirs to decide."""
    if esc.claimed_by_id is None or is_stale(esc):
        return False
    return user is None or esc.claimed_by_id != user.pk


def open_to(user, now: datetime | None = None) -> Q:
    """Rows ``user`` may decide or claim: unclaimed, stale, or already theirs."""
    free = Q(claimed_by__isnull=True) | Q(claimed_at__lt=stale_before(now))
    if user is not None and getattr(user, "is_authenticated", False):
        free |= Q(claimed_by=user)
    return free


def claimed_by_other(esc: Escalation) -> ClaimedByOther:
    who = esc.claimed_by.get_username() if esc.claimed_by else "someone"
    since = timesince(esc.claimed_at) if esc.claimed_at else "a moment"
    free_at = esc.claimed_at + timedelta(seconds=timeout_seconds()) if esc.claimed_at else None
    later = f" It can be taken over in {timesince(timezone.now(), free_at)}." \
        if free_at and free_at > timezone.now() else ""
    return ClaimedByOther(f"Claimed by {who} ({since} ago).{later}")


def refusal(esc: Escalation, user) -> ClaimedByOther | None:
    """Why a conditional decision on a still-open escalation matched nothing, if a claim."""
    if esc.status != Escalation.Status.OPEN:
        return None
    esc.refresh_from_db(fields=["claimed_by", "claimed_at"])
    return claimed_by_other(esc) if held_by_other(esc, user) else None


@dataclass(frozen=True)
class ClaimOutcome:
    escalation: Escalation
    action: str  # claimed | renewed | claim_taken_over | released
    previous: str = ""


def claim(*, escalation_id: int, user) -> ClaimOutcome:
    """Claim an open escalation: unclaimed, renew one's own, or take over a stale claim.
    Forbidden for a user whose role in the team does not claim (a viewer)."""
    _may_claim(user, escalation_id)
    now = timezone.now()
    with transaction.atomic():
        rows = Escalation.objects.filter(pk=escalation_id, status=Escalation.Status.OPEN)
        previous = ""
        if rows.filter(claimed_by__isnull=True).update(claimed_by=user, claimed_at=now):
            action = "claimed"
        elif rows.filter(claimed_by=user).update(claimed_at=now):
            action = "renewed"
        else:
            current = _current(escalation_id)
            taken = current.claimed_at is not None and current.claimed_at < stale_before(now) \
                and rows.filter(claimed_by_id=current.claimed_by_id,
                                claimed_at=current.claimed_at).update(claimed_by=user,
                                                                      claimed_at=now)
            if not taken:
                raise claimed_by_other(_current(escalation_id))
            action = "claim_taken_over"
            previous = current.claimed_by.get_username() if current.claimed_by else ""
        esc = _current(escalation_id)
        if action != "renewed":
            detail = {"run_id": esc.run_id, **({"previous": previous} if previous else {})}
            audit.record(team_id=esc.team_id, action=f"escalation.{action}", target=esc,
                         actor=user, detail=detail)
            publish_on_commit(lambda: fragments.claim_changed(esc))
    return ClaimOutcome(escalation=esc, action=action, previous=previous)


def release(*, escalation_id: int, user) -> ClaimOutcome:
    """Give a claim back. Only its holder can; releasing nothing is a no-op."""
    _may_claim(user, escalation_id)
    with transaction.atomic():
        rows = Escalation.objects.filter(pk=escalation_id, status=Escalation.Status.OPEN)
        released = rows.filter(claimed_by=user).update(claimed_by=None, claimed_at=None)
        esc = _current(escalation_id)
        if not released:
            if esc.claimed_by_id not in (None, user.pk):
                raise claimed_by_other(esc)
            return ClaimOutcome(escalation=esc, action="released")
        audit.record(team_id=esc.team_id, action="escalation.released", target=esc,
                     actor=user, detail={"run_id": esc.run_id})
        publish_on_commit(lambda: fragments.claim_changed(esc))
    return ClaimOutcome(escalation=esc, action="released")


def _may_claim(user, escalation_id: int) -> None:
    team_id = Escalation.objects.filter(pk=escalation_id).values_list("team_id", flat=True) \
        .first()
    if team_id is None:
        raise NotFound("No such escalation.")
    permissions.require(user, permissions.Action.CLAIM, team_id)


def _current(escalation_id: int) -> Escalation:
    esc = Escalation.objects.select_related("claimed_by", "decided_by").filter(
        pk=escalation_id).first()
    if esc is None:
        raise NotFound("No such escalation.")
    if esc.status == Escalation.Status.DECIDED:
        who = esc.decided_by.get_username() if esc.decided_by else "an API client"
        raise NotOpen(f"Already decided by {who} ({esc.decision}).")
    if esc.status != Escalation.Status.OPEN:
        raise NotOpen(f"This escalation is {esc.status}; it can no longer be claimed.")
    return esc
