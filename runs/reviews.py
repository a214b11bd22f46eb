"""Writes: a reviewer's verdict on a sampled run (the review queue, ``/review/``).

The verdict is a conditional UPDATE (``WHERE status = 'pending'``), so two reviewers who
click at once make one label: the loser is told who reviewed it first, and nothing else
happens. The label and the audit row go in the same transaction.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from . import audit, labels, permissions
from .errors import AlreadyDecided, Invalid, NotFound
from .models import ReviewItem

VERDICTS = {"approve": ReviewItem.Status.APPROVED, "flag": ReviewItem.Status.FLAGGED}


def review(*, item_id: int, user, verdict: str) -> ReviewItem:
    """Approve (the agent was right) or flag (it was wrong) a sampled run, once.
    Raises Invalid for another verdict, NotFound, Forbidden for a role that does not review
    (a viewer), and AlreadyDecided for the loser of a race."""
    status = VERDICTS.get(verdict)
    if status is None:
        raise Invalid(f"Unknown verdict {verdict!r}: approve or flag.",
                      {"verdict": ["approve or flag"]})
    team_id = ReviewItem.objects.filter(pk=item_id).values_list("team_id", flat=True).first()
    if team_id is None:
        raise NotFound("No such review item.")
    permissions.require(user, permissions.Action.REVIEW, team_id)
    now = timezone.now()
    with transaction.atomic():
        won = ReviewItem.objects.filter(pk=item_id, status=ReviewItem.Status.PENDING).update(
            status=status, reviewed_by=user, reviewed_at=now)
        item = ReviewItem.objects.select_related("reviewed_by").filter(pk=item_id).first()
        if item is None:
            raise NotFound("No such review item.")
        if not won:
            who = item.reviewed_by.get_username() if item.reviewed_by else "someone"
            when = timezone.localtime(item.reviewed_at).strftime("%H:%M:%S") \
                if item.reviewed_at else ""
            raise AlreadyDecided(f"Already reviewed by {who} ({item.status}) at {when}.")
        correct = status == ReviewItem.Status.APPROVED
        labels.from_review(item, correct=correct, user=user)
        audit.record(team_id=item.team_id, action="run.reviewed", target=item.run, actor=user,
                     detail={"verdict": item.status, "confidence": item.confidence,
                             "tier": item.tier, "model": item.model})
    return item
