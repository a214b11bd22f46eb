"""Bulk triage: one action (approve, reject, claim, assign) on many escalations, reported
item by item.

There is no second copy of the decision logic here. Each item goes through the writer a
single click uses (``services.decide``, ``claims.claim``, ``assignment.assign``), in its
own transaction, with the same conditional UPDATE and the same permission check: an item
someone else decided a moment ago loses exactly as it would alone, and the items before
and after it are not affected. There is deliberately no transaction around the loop. One
item's refusal must not undo the others, and a long transaction would hold row locks
while an operator on another screen decides.

What each item came to is an ``ItemOutcome``. Its ``kind`` is one of ``KINDS``; the console's
results panel and the tests read it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from agentdesk.runtime.outcomes import Decision

from . import assignment, claims, permissions, selectors, services
from .errors import AppError, ClaimedByOther, Conflict, Forbidden, Invalid, NotFound
from .models import Escalation

log = logging.getLogger(__name__)

# At most this many escalations in one request: a page of the inbox is 50, and a selection
# kept across live updates can hold the ids of rows that left the page meanwhile.
MAX_ITEMS = 200
MAX_MESSAGE = 4000

# What happened to one item.
DONE = "done"                    # decided (claimed, assigned) by this request
LOST = "lost"                    # someone else decided it first
CLOSED = "closed"                # closed without a decision (its run stopped waiting)
CHANGED = "changed"              # still open, but someone changed it first (an assignment)
NOT_PERMITTED = "not_permitted"  # not this user's to act on: another team, another's claim
INVALID = "invalid"              # the action does not fit the item (approve, nothing proposed)
FAILED = "failed"                # a bug: logged, and the other items go on
KINDS = (DONE, LOST, CLOSED, CHANGED, NOT_PERMITTED, INVALID, FAILED)
LABELS = {LOST: "someone else decided first", CLOSED: "no longer open",
          CHANGED: "someone else changed it first", NOT_PERMITTED: "not permitted",
          INVALID: "invalid for this item", FAILED: "failed"}


@dataclass(frozen=True)
class ItemOutcome:
    escalation_id: int
    kind: str
    label: str
    message: str = ""
    code: str = ""  # the refusal's error code (``already_decided``, ``claimed_by_other`` …)

    def as_dict(self) -> dict[str, Any]:
        return {"escalation_id": self.escalation_id, "kind": self.kind, "label": self.label,
                "message": self.message, "code": self.code}


@dataclass(frozen=True)
class BulkResult:
    action: str
    items: list[ItemOutcome] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """Items per label, in the order the kinds are listed (``{"decided": 19, …}``)."""
        by_kind = Counter(item.kind for item in self.items)
        labels = {item.kind: item.label for item in self.items}
        return {labels[kind]: by_kind[kind] for kind in KINDS if by_kind[kind]}

    @property
    def summary(self) -> str:
        parts = ", ".join(f"{n} {label}" for label, n in self.counts.items())
        return f"{ACTION_NAMES[self.action]} {len(self.items)}: {parts}."

    def as_dict(self) -> dict[str, Any]:
        """Plain values: what the results panel shows, and what a session can keep."""
        return {"action": self.action, "summary": self.summary,
                "counts": list(self.counts.items()),
                "items": [item.as_dict() for item in self.items]}


def _decide(decision: Decision) -> Callable[..., str]:
    def act(*, user, escalation_id: int, message: str, **_: Any) -> str:
        services.decide(escalation_id=escalation_id, user=user, decision=decision.value,
                        message=message)
        return f"Decided: {decision.value}."
    return act


def _claim(*, user, escalation_id: int, **_: Any) -> str:
    outcome = claims.claim(escalation_id=escalation_id, user=user)
    return {"renewed": "You held it already (renewed).",
            "claim_taken_over": f"Taken over from {outcome.previous or 'someone'} (stale)."
            }.get(outcome.action, "Claimed.")


def _assign(*, user, escalation_id: int, assignee: int | None, **_: Any) -> str:
    outcome = assignment.assign(escalation_id=escalation_id, assignee_id=assignee, user=user)
    who = outcome.escalation.assigned_to
    name = "you" if who is not None and who.pk == getattr(user, "pk", None) \
        else who.get_username() if who is not None else "nobody"
    return {"unassigned": f"Unassigned (was {outcome.previous or 'nobody'}).",
            "unchanged": f"Already assigned to {name}.",
            "reassigned": f"Assigned to {name} (was {outcome.previous})."
            }.get(outcome.action, f"Assigned to {name}.")


# Each action is the writer one click on one escalation uses; it returns what to tell the
# operator.
ACTIONS: dict[str, Callable[..., str]] = {
    "approve": _decide(Decision.APPROVE),
    "reject": _decide(Decision.REJECT),
    "claim": _claim,
    "assign": _assign,
}
ACTION_NAMES = {"approve": "Approve", "reject": "Reject", "claim": "Claim", "assign": "Assign"}
DONE_LABELS = {"approve": "decided", "reject": "decided", "claim": "claimed",
               "assign": "assigned"}
NOBODY = "none"  # the assignee that unassigns


def assignable_for(user) -> QuerySet:
    """Whom the inbox offers to assign to: the active members of the user's teams who may
    decide (no viewers). Each item still checks that its assignee is one of the
    escalation's team (``assignment.members``)."""
    deciders = permissions.roles_allowed(permissions.Action.DECIDE)
    return (get_user_model().objects
            .filter(memberships__team__in=selectors.teams_for(user),
                    memberships__role__in=deciders, is_active=True)
            .distinct().order_by("username"))


def parse_assignee(raw: Any, user) -> int | None:
    """``me``, a user id, or ``none`` (unassign). Raises Invalid for anything else."""
    value = str(raw or "").strip()
    if value == "me":
        return user.pk
    if value == NOBODY:
        return None
    if not value.isdigit():
        raise Invalid("Choose whom to assign the selected escalations to.",
                      {"assignee": ["Required."]})
    return int(value)


def parse_ids(raw: Iterable[Any]) -> list[int]:
    """The selected ids, in order, each once. Raises Invalid for anything not an id."""
    ids: list[int] = []
    for value in raw:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise Invalid(f"{str(value)[:40]!r} is not an escalation id.",
                          {"ids": ["Escalation ids are whole numbers."]}) from None
        if number <= 0:
            raise Invalid(f"{number} is not an escalation id.",
                          {"ids": ["Escalation ids are positive."]})
        if number not in ids:
            ids.append(number)
    return ids


def apply(*, user, action: str, escalation_ids: Iterable[Any], message: str = "",
          assignee: Any = "") -> BulkResult:
    """Do ``action`` to each escalation in ``escalation_ids`` (in that order) as ``user``.

    Refuses the whole request (Invalid) only for what no item could fix: an unknown action,
    no ids, too many, or a message over the limit. Everything else is an item's outcome. An
    escalation outside the user's teams is "not permitted", whether or not it exists, so
    the answer says nothing about other teams. ``message`` goes with each decision (the
    reason, for reject); ``assignee`` is for assign (``parse_assignee``).
    """
    if action not in ACTIONS:
        raise Invalid(f"Unknown bulk action {action!r}; use one of {', '.join(ACTIONS)}.",
                      {"action": ["Unknown action."]})
    ids = parse_ids(escalation_ids)
    if not ids:
        raise Invalid("Select at least one escalation.", {"ids": ["Nothing selected."]})
    if len(ids) > MAX_ITEMS:
        raise Invalid(f"{len(ids)} escalations selected; at most {MAX_ITEMS} at once.",
                      {"ids": [f"At most {MAX_ITEMS}."]})
    message = (message or "").strip()
    if len(message) > MAX_MESSAGE:
        raise Invalid(f"The message is too long ({MAX_MESSAGE} characters at most).",
                      {"message": [f"At most {MAX_MESSAGE} characters."]})
    to = parse_assignee(assignee, user) if action == "assign" else None
    visible = set(Escalation.objects.filter(team__in=selectors.teams_for(user), pk__in=ids)
                  .values_list("pk", flat=True))
    items = [
        _one(action, user=user, escalation_id=esc_id, message=message, assignee=to)
        if esc_id in visible
        else ItemOutcome(esc_id, NOT_PERMITTED, LABELS[NOT_PERMITTED],
                         "Not among your teams' escalations.", NotFound.code)
        for esc_id in ids
    ]
    return BulkResult(action=action, items=items)


def _one(action: str, *, user, escalation_id: int, message: str,
         assignee: int | None) -> ItemOutcome:
    try:
        done = ACTIONS[action](user=user, escalation_id=escalation_id, message=message,
                               assignee=assignee)
    except AppError as exc:
        kind = _kind_of(exc, escalation_id)
        return ItemOutcome(escalation_id, kind, LABELS[kind], exc.message, exc.code)
    except Exception:  # a bug in one item must not hide what happened to the others
        log.exception("bulk action on escalation %s failed", escalation_id)
        return ItemOutcome(escalation_id, FAILED, LABELS[FAILED],
                           "An internal error; it is logged. Try this one on its own page.")
    return ItemOutcome(escalation_id, DONE, DONE_LABELS[action], done)


def _kind_of(exc: AppError, escalation_id: int) -> str:
    if isinstance(exc, ClaimedByOther | Forbidden | NotFound):
        return NOT_PERMITTED
    if isinstance(exc, Conflict):  # lost to the escalation's current state: which one?
        status = Escalation.objects.filter(pk=escalation_id).values_list("status", flat=True)
        return {Escalation.Status.DECIDED: LOST, Escalation.Status.OPEN: CHANGED}.get(
            status.first(), CLOSED)
    return INVALID
