"""Reads scoped to the user's teams: no view can forget the scope, because it has none."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from .models import Agent, Escalation, Run, Step, Team


def teams_for(user) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    if user.is_superuser:
        return Team.objects.all()
    return Team.objects.filter(memberships__user=user)


def team_ids_for(user) -> list[int]:
    return list(teams_for(user).values_list("id", flat=True))


def agents_for(user) -> QuerySet[Agent]:
    return Agent.objects.filter(team__in=teams_for(user), enabled=True).select_related("team")


def runs_for(user) -> QuerySet[Run]:
    return Run.objects.filter(team__in=teams_for(user)).select_related("agent", "team")


def run_for(user, run_id: int) -> Run:
    run = runs_for(user).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such run.")
    return run


def steps_of(run: Run) -> QuerySet[Step]:
    return run.steps.order_by("index")


def open_escalations_for(user) -> QuerySet[Escalation]:
    return (
        Escalation.objects.filter(team__in=teams_for(user), status=Escalation.Status.OPEN)
        .select_related("run", "run__agent", "team")
        .order_by("-created_at")
    )


def escalation_for(user, escalation_id: int) -> Escalation:
    esc = (
        Escalation.objects.filter(team__in=teams_for(user), pk=escalation_id)
        .select_related("run", "run__agent", "team", "decided_by")
        .first()
    )
    if esc is None:
        raise Http404("No such escalation.")
    return esc


def can_see_run(user, run_id: int) -> bool:
    return runs_for(user).filter(pk=run_id).exists()
