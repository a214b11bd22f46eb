"""Reads for an API key: every queryset starts from the key's team, so no endpoint can
reach another team's rows (they are simply not found: 404)."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from ..errors import NotFound
from ..models import Agent, ApiKey, Escalation, Run


def runs_for(key: ApiKey) -> QuerySet[Run]:
    open_escalation = Escalation.objects.filter(
        run=OuterRef("pk"), status=Escalation.Status.OPEN
    ).order_by("-pk").values("pk")[:1]
    return (Run.objects.filter(team_id=key.team_id).select_related("agent", "team")
            .annotate(open_escalation_id=Subquery(open_escalation)))


def run_for(key: ApiKey, run_id: int) -> Run:
    run = runs_for(key).filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"No run {run_id}.")
    return run


def escalations_for(key: ApiKey) -> QuerySet[Escalation]:
    return (Escalation.objects.filter(team_id=key.team_id)
            .select_related("run", "run__agent", "decided_by", "assigned_to"))


def escalation_for(key: ApiKey, escalation_id: int) -> Escalation:
    esc = escalations_for(key).filter(pk=escalation_id).first()
    if esc is None:
        raise NotFound(f"No escalation {escalation_id}.")
    return esc


def agents_for(key: ApiKey) -> QuerySet[Agent]:
    return Agent.objects.filter(team_id=key.team_id, enabled=True).order_by("slug")
