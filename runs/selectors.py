"""Reads scoped to the user's teams: no view can forget the scope, because it has none."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta

from django.db.models import Count, F, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from agentdesk.runtime.outcomes import Reason, RunStatus

from . import claims, permissions
from .models import Agent, AuditEvent, Escalation, ReviewItem, Run, Step, Team, ToolCall

INBOX_PAGE_SIZE = 50
RUNS_PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 50
ESCALATION_REASONS = [r.value for r in Reason if r.value]


def teams_for(user) -> QuerySet[Team]:
    """The teams whose console the user sees: every role sees (``runs.permissions``)."""
    return permissions.teams_where(user, permissions.Action.VIEW)


def team_ids_for(user) -> list[int]:
    return list(teams_for(user).values_list("id", flat=True))


def agents_for(user) -> QuerySet[Agent]:
    return Agent.objects.filter(team__in=teams_for(user), enabled=True).select_related("team")


def agents_to_submit(user) -> QuerySet[Agent]:
    """The agents the user may start runs of (not a viewer's teams')."""
    return Agent.objects.filter(
        team__in=permissions.teams_where(user, permissions.Action.SUBMIT), enabled=True,
    ).select_related("team")


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
        .select_related("run", "run__agent", "team", "claimed_by", "assigned_to")
        .order_by(*INBOX_ORDER)
    )


def escalation_for(user, escalation_id: int) -> Escalation:
    esc = (
        Escalation.objects.filter(team__in=teams_for(user), pk=escalation_id)
        .select_related("run", "run__agent", "run__team", "team", "decided_by", "claimed_by",
                        "assigned_to")
        .first()
    )
    if esc is None:
        raise Http404("No such escalation.")
    return esc


def can_see_run(user, run_id: int) -> bool:
    return runs_for(user).filter(pk=run_id).exists()


# --- the inbox: triage order, facets, pages ----------------------------------------------

# Most urgent first: priority, then the least time left before the SLA deadline (none last).
INBOX_ORDER = ("priority", F("deadline_at").asc(nulls_last=True), "id")


@dataclass(frozen=True)
class InboxFilters:
    team: str = ""
    agent: str = ""
    reason: str = ""
    claimed: str = "all"  # all | mine | unclaimed
    q: str = ""

    def facet(self, user, skip: str = "") -> Q:
        """The filters except ``skip`` (a facet's counts ignore its own choice)."""
        cond = Q()
        if self.team and skip != "team":
            cond &= Q(team__slug=self.team)
        if self.agent and skip != "agent":
            cond &= Q(run__agent__slug=self.agent)
        if self.reason and skip != "reason":
            cond &= Q(reason=self.reason)
        if skip != "claimed":
            cond &= claimed_q(self.claimed, user)
        return cond

    def querystring(self) -> str:
        from urllib.parse import urlencode

        pairs = [(f.name, getattr(self, f.name)) for f in fields(self)]
        return urlencode([(k, v) for k, v in pairs if v and not (k == "claimed" and v == "all")])


def claimed_q(choice: str, user) -> Q:
    if choice == "mine":  # held by me, or assigned to me (runs.assignment)
        return Q(claimed_by=user) & Q(claimed_at__gte=claims.stale_before()) \
            | Q(assigned_to=user)
    if choice == "unclaimed":  # nobody holds it (a stale claim counts as free)
        return Q(claimed_by__isnull=True) | Q(claimed_at__lt=claims.stale_before())
    return Q()


def _searched(user, q: str) -> QuerySet[Escalation]:
    rows = Escalation.objects.filter(team__in=teams_for(user), status=Escalation.Status.OPEN)
    if q:
        rows = rows.filter(Q(question__icontains=q) | Q(run__input__message__icontains=q))
    return rows


def inbox_rows(user, filters: InboxFilters) -> QuerySet[Escalation]:
    return (
        _searched(user, filters.q).filter(filters.facet(user))
        .select_related("run", "run__agent", "team", "claimed_by", "assigned_to")
        .order_by(*INBOX_ORDER)
    )


@dataclass
class Facet:
    name: str
    options: list[tuple[str, str, int]] = field(default_factory=list)  # value, label, count


def inbox_counts(user, filters: InboxFilters) -> tuple[int, list[Facet]]:
    """The total and each filter option's count, in one aggregate query."""
    teams = list(teams_for(user).values_list("slug", "name"))
    agents = sorted(set(agents_for(user).values_list("slug", flat=True)))
    wanted: list[tuple[str, str, str, Q]] = [
        ("claimed", "all", "All", Q()),
        ("claimed", "mine", "Mine", claimed_q("mine", user)),
        ("claimed", "unclaimed", "Unclaimed", claimed_q("unclaimed", user)),
    ]
    wanted += [("team", slug, name, Q(team__slug=slug)) for slug, name in teams]
    wanted += [("agent", slug, slug, Q(run__agent__slug=slug)) for slug in agents]
    wanted += [("reason", r, r.replace("_", " "), Q(reason=r)) for r in ESCALATION_REASONS]
    aggregates = {"total": _count(filters.facet(user))}
    for i, (name, _value, _label, cond) in enumerate(wanted):
        aggregates[f"c{i}"] = _count(filters.facet(user, skip=name) & cond)
    counts = _searched(user, filters.q).aggregate(**aggregates)
    facets = {name: Facet(name) for name in ("claimed", "team", "agent", "reason")}
    for i, (name, value, label, _cond) in enumerate(wanted):
        n = counts[f"c{i}"]
        if name in ("claimed", "team", "agent") or n or getattr(filters, name) == value:
            facets[name].options.append((value, label, n))
    return counts["total"], list(facets.values())


def _count(cond: Q) -> Count:
    return Count("id", filter=cond) if cond else Count("id")


def inbox_neighbours(user, esc: Escalation, filters: InboxFilters) -> tuple[int | None, ...]:
    """The previous and next escalation in inbox order (keyset on the sort key)."""
    p, d, i = esc.priority, esc.deadline_at, esc.pk
    rows = _searched(user, filters.q).filter(filters.facet(user))
    if d is None:
        after = Q(priority__gt=p) | Q(priority=p, deadline_at__isnull=True, id__gt=i)
        before = Q(priority__lt=p) | Q(priority=p) & (
            Q(deadline_at__isnull=False) | Q(deadline_at__isnull=True, id__lt=i))
    else:
        after = Q(priority__gt=p) | Q(priority=p) & (
            Q(deadline_at__gt=d) | Q(deadline_at__isnull=True) | Q(deadline_at=d, id__gt=i))
        before = Q(priority__lt=p) | Q(priority=p) & (
            Q(deadline_at__lt=d) | Q(deadline_at=d, id__lt=i))
    nxt = rows.filter(after).order_by(*INBOX_ORDER).values_list("id", flat=True).first()
    reverse = ("-priority", F("deadline_at").desc(nulls_first=True), "-id")
    prev = rows.filter(before).order_by(*reverse).values_list("id", flat=True).first()
    return prev, nxt


# --- runs --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunFilters:
    status: str = ""
    reason: str = ""
    agent: str = ""
    team: str = ""
    since: date | None = None
    until: date | None = None

    def apply(self, runs: QuerySet[Run]) -> QuerySet[Run]:
        if self.status in {s.value for s in RunStatus}:
            runs = runs.filter(status=self.status)
        if self.reason == "escalated":
            runs = runs.filter(escalations__isnull=False).distinct()
        elif self.reason:
            runs = runs.filter(reason=self.reason)
        if self.agent:
            runs = runs.filter(agent__slug=self.agent)
        if self.team:
            runs = runs.filter(team__slug=self.team)
        if self.since:
            runs = runs.filter(created_at__gte=day_start(self.since))
        if self.until:
            runs = runs.filter(created_at__lt=day_start(self.until + timedelta(days=1)))
        return runs


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def run_rows(user, filters: RunFilters) -> QuerySet[Run]:
    return filters.apply(runs_for(user)).order_by("-created_at", "-id")


def run_escalations(run: Run) -> QuerySet[Escalation]:
    return run.escalations.order_by("created_at").select_related("decided_by", "claimed_by")


# --- audit -------------------------------------------------------------------------------

def audit_events_for(user, action: str = "", team: str = "") -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.filter(team__in=teams_for(user))
    if action:
        events = events.filter(action=action)
    if team:
        events = events.filter(team__slug=team)
    return events.select_related("actor", "team", "api_key").order_by("-created_at", "-id")


# --- the review queue --------------------------------------------------------------------

REVIEWED_SHOWN = 10


def _reviews(user) -> QuerySet[ReviewItem]:
    actions = ToolCall.objects.filter(status=ToolCall.Status.SUCCEEDED).order_by("started_at")
    return (ReviewItem.objects.filter(team__in=teams_for(user))
            .select_related("run", "agent", "team", "reviewed_by")
            .prefetch_related(Prefetch("run__tool_calls", queryset=actions, to_attr="actions")))


def review_queue_for(user) -> QuerySet[ReviewItem]:
    """Sampled runs waiting for a verdict, oldest first."""
    return _reviews(user).filter(status=ReviewItem.Status.PENDING).order_by("created_at", "id")


def reviewed_for(user) -> QuerySet[ReviewItem]:
    return _reviews(user).exclude(status=ReviewItem.Status.PENDING) \
        .order_by("-reviewed_at", "-id")[:REVIEWED_SHOWN]


def review_item_for(user, item_id: int) -> ReviewItem:
    item = _reviews(user).filter(pk=item_id).first()
    if item is None:
        raise Http404("No such review item.")
    return item
