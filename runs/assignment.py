"""Assignment: who on the team is responsible for an escalation.

An assignment is not a claim (``runs.claims``): it does not expire and does not stop
another operator deciding (a claim does, while it is live). It says whose the escalation
is — the assignee finds it under the inbox's "Mine", everyone else sees the name.

Every change is a conditional UPDATE on the assignee the writer saw (``WHERE
assigned_to = <expected>``, like claims and decisions), so of two operators reassigning at
once one wins and the other is told who holds it now; each change is audited
(``escalation.assigned`` / ``reassigned`` / ``unassigned``) in its transaction and pushed to
the team's inboxes after commit.

**Round-robin.** A team with ``auto_assign`` on gets each new escalation assigned, in the
transaction that opens it (``lifecycle.checkpoint``), to the next of its members active in
the console within ``auto_assign_active_minutes`` (``touch``: a page or websocket of the
console, at most one write a minute per user), in user-id order after the one who got the
previous one (``Team.auto_assign_last``, moved by a conditional UPDATE, so two escalations
opened at once go to two people). Nobody active: it stays unassigned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from . import audit, fragments, permissions
from .errors import Conflict, Invalid, NotFound, NotOpen
from .events import publish_on_commit
from .models import Escalation, Membership, Team

UNSET: Any = object()
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class AssignOutcome:
    escalation: Escalation
    action: str  # assigned | reassigned | unassigned | unchanged
    previous: str = ""


def members(team_id: int) -> QuerySet:
    """Who an escalation of the team may be assigned to: its active members who may decide
    it (not viewers: ``runs.permissions``)."""
    deciders = permissions.roles_allowed(permissions.Action.DECIDE)
    return (get_user_model().objects.filter(memberships__team_id=team_id,
                                            memberships__role__in=deciders, is_active=True)
            .order_by("username").distinct())


def member_id(team_id: int, username: str) -> int:
    """The id of the team's member called ``username``; Invalid when there is none."""
    found = members(team_id).filter(username=username).values_list("pk", flat=True).first()
    if found is None:
        raise Invalid(f"{username!r} is not a member of the escalation's team.",
                      fields={"user": ["Not a member of this team."]})
    return found


def _name(user_id: int | None) -> str:
    if user_id is None:
        return ""
    user = get_user_model().objects.filter(pk=user_id).first()
    return user.get_username() if user else "someone"


def _open(escalation_id: int) -> Escalation:
    esc = Escalation.objects.select_related("assigned_to", "decided_by").filter(
        pk=escalation_id).first()
    if esc is None:
        raise NotFound("No such escalation.")
    if esc.status != Escalation.Status.OPEN:
        raise NotOpen(f"This escalation is {esc.status}; it can no longer be assigned.")
    return esc


def assign(*, escalation_id: int, assignee_id: int | None, user=None,
           api_key_id: int | None = None, expected: Any = UNSET) -> AssignOutcome:
    """Assign an open escalation to ``assignee_id`` (None: unassign). ``expected`` is the
    assignee the caller saw (a form sends it): when it changed meanwhile, Conflict names
    who holds it now instead of overwriting that. Forbidden for a user whose role in the
    team does not assign (a viewer); an API key's scope was checked by the API."""
    now = timezone.now()
    with transaction.atomic():
        esc = _open(escalation_id)
        if user is not None:
            permissions.require(user, permissions.Action.ASSIGN, esc.team_id)
        if assignee_id is not None and not members(esc.team_id).filter(pk=assignee_id).exists():
            raise Invalid("That user is not a member of the escalation's team.",
                          fields={"user": ["Not a member of this team."]})
        current = esc.assigned_to_id
        if expected is not UNSET and expected != current:
            raise _changed(esc)
        if assignee_id == current:
            return AssignOutcome(escalation=esc, action="unchanged",
                                 previous=_name(current))
        rows = Escalation.objects.filter(pk=esc.pk, status=Escalation.Status.OPEN)
        rows = rows.filter(assigned_to__isnull=True) if current is None \
            else rows.filter(assigned_to_id=current)
        if not rows.update(assigned_to_id=assignee_id,
                           assigned_at=now if assignee_id is not None else None):
            raise _changed(_open(escalation_id))
        previous = _name(current)
        action = ("unassigned" if assignee_id is None
                  else "assigned" if current is None else "reassigned")
        esc = _open(escalation_id)
        _record(esc, action, actor=user, api_key_id=api_key_id, previous=previous)
    return AssignOutcome(escalation=esc, action=action, previous=previous)


def _changed(esc: Escalation) -> Conflict:
    who = esc.assigned_to.get_username() if esc.assigned_to else "nobody"
    return Conflict(f"The assignment changed meanwhile: it is now assigned to {who}.")


def _record(esc: Escalation, action: str, *, actor=None, api_key_id: int | None = None,
            previous: str = "", auto: bool = False) -> None:
    detail: dict[str, Any] = {"run_id": esc.run_id}
    if esc.assigned_to_id is not None:
        detail["assignee"] = _name(esc.assigned_to_id)
    if previous:
        detail["previous"] = previous
    if auto:
        detail["auto"] = True
    audit.record(team_id=esc.team_id, action=f"escalation.{action}", target=esc, actor=actor,
                 api_key_id=api_key_id, detail=detail)
    if not auto:  # an automatic one happens as the escalation opens, which is pushed anyway
        publish_on_commit(lambda: fragments.assignment_changed(esc))


# -- round-robin ---------------------------------------------------------------------------


def active_members(team_id: int, minutes: int, now: datetime) -> list[int]:
    """User ids of the team's members active in the console in the last ``minutes``."""
    since = now - timedelta(minutes=minutes)
    deciders = permissions.roles_allowed(permissions.Action.DECIDE)  # never a viewer
    return list(Membership.objects.filter(team_id=team_id, last_active_at__gte=since,
                                          role__in=deciders, user__is_active=True)
                .order_by("user_id").values_list("user_id", flat=True))


def auto_assign(esc: Escalation, now: datetime | None = None) -> int | None:
    """Inside the transaction that opened ``esc``: assign it round-robin when its team asks
    for that. Returns the assignee's id, or None."""
    now = now or timezone.now()
    for _ in range(5):  # the turn moved under us: read it again
        team = Team.objects.filter(pk=esc.team_id).values(
            "auto_assign", "auto_assign_active_minutes", "auto_assign_last_id").first()
        if not team or not team["auto_assign"]:
            return None
        active = active_members(esc.team_id, team["auto_assign_active_minutes"], now)
        if not active:
            return None
        last = team["auto_assign_last_id"]
        chosen = next((uid for uid in active if last is None or uid > last), active[0])
        turn = Team.objects.filter(pk=esc.team_id)
        turn = turn.filter(auto_assign_last__isnull=True) if last is None \
            else turn.filter(auto_assign_last_id=last)
        if turn.update(auto_assign_last_id=chosen):
            break
    else:
        return None
    if not Escalation.objects.filter(pk=esc.pk, assigned_to__isnull=True).update(
            assigned_to_id=chosen, assigned_at=now):
        return None
    esc.assigned_to_id, esc.assigned_at = chosen, now
    _record(esc, "assigned", auto=True)
    return chosen


def touch(user) -> None:
    """The user is using the console now (for round-robin): at most one write a minute."""
    if user is None or not getattr(user, "is_authenticated", False):
        return
    if not cache.add(f"agentdesk:active:{user.pk}", 1, timeout=TOUCH_EVERY.total_seconds()):
        return
    now = timezone.now()
    Membership.objects.filter(user=user).filter(
        Q(last_active_at__isnull=True) | Q(last_active_at__lt=now - TOUCH_EVERY)
    ).update(last_active_at=now)
