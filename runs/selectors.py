"""Reads scoped to the user's teams: no view can forget the scope, because it has none."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta

from django.core.exceptions import EmptyResultSet
from django.db import connections
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
    return (Run.objects.filter(team__in=teams_for(user))
            .select_related("agent", "team", "snapshot"))


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
# The ``esc_queue`` index holds the open rows of a team in exactly this order.
INBOX_ORDER = ("priority", F("deadline_at").asc(nulls_last=True), "id")
# Counts stop (each reads at most its cap + 1 rows), so the inbox costs the same with 10,000
# open escalations as with 10: the total at 1,000 ("1,000+ open", 20+ pages; further on a
# deeper page), each filter option's count at 100 ("100+").
INBOX_TOTAL_CAP = 1000
INBOX_FACET_CAP = 100
# The columns an inbox row shows (``inbox.html#inbox-row``): not the runs' checkpoints.
INBOX_ROW_FIELDS = (
    "run", "team", "reason", "question", "proposed_tool", "confidence", "status", "priority",
    "deadline_at", "created_at", "claimed_by", "claimed_at", "assigned_to", "run__input",
    "run__agent", "run__agent__slug", "team__name", "claimed_by__username",
    "assigned_to__username",
)


@dataclass(frozen=True)
class InboxFilters:
    team: str = ""
    agent: str = ""
    reason: str = ""
    claimed: str = "all"  # all | mine | unclaimed
    q: str = ""

    def facet(self, user, skip: str = "") -> Q:
        """The filters except ``skip`` (a facet's counts ignore its own choice). Conditions
        on the escalation's own columns (a team by id, an agent by a subquery): no join."""
        cond = Q()
        if self.team and skip != "team":
            cond &= Q(team__in=Team.objects.filter(slug=self.team).values("id"))
        if self.agent and skip != "agent":
            cond &= agent_q(self.agent)
        if self.reason and skip != "reason":
            cond &= Q(reason=self.reason)
        if skip != "claimed":
            cond &= claimed_q(self.claimed, user)
        return cond

    def querystring(self) -> str:
        from urllib.parse import urlencode

        pairs = [(f.name, getattr(self, f.name)) for f in fields(self)]
        return urlencode([(k, v) for k, v in pairs if v and not (k == "claimed" and v == "all")])


def agent_q(slug: str) -> Q:
    """Escalations of runs of an agent called ``slug`` (in any of the teams)."""
    return Q(run__agent__in=Agent.objects.filter(slug=slug).values("id"))


def claimed_q(choice: str, user) -> Q:
    if choice == "mine":  # held by me, or assigned to me (runs.assignment)
        return Q(claimed_by=user) & Q(claimed_at__gte=claims.stale_before()) \
            | Q(assigned_to=user)
    if choice == "unclaimed":  # nobody holds it (a stale claim counts as free)
        return Q(claimed_by__isnull=True) | Q(claimed_at__lt=claims.stale_before())
    return Q()


@dataclass(frozen=True)
class InboxScope:
    """What the inbox of a user covers, read once per page: the teams (id, slug, name) and
    the slugs of their enabled agents."""

    teams: tuple[tuple[int, str, str], ...]
    agents: tuple[str, ...]

    @property
    def team_ids(self) -> list[int]:
        return [pk for pk, _slug, _name in self.teams]


def inbox_scope(user) -> InboxScope:
    teams = tuple(teams_for(user).order_by("name", "id").values_list("id", "slug", "name"))
    agents = Agent.objects.filter(team__in=[pk for pk, _s, _n in teams], enabled=True)
    return InboxScope(teams=teams,
                      agents=tuple(sorted(set(agents.values_list("slug", flat=True)))))


def _searched(user, q: str, team_ids: list[int] | None = None) -> QuerySet[Escalation]:
    """The open escalations of the user's teams matching ``q``. Given the team ids as a
    list, Postgres reads them from the ``esc_queue`` index (a subquery hides the teams from
    the planner)."""
    teams = teams_for(user) if team_ids is None else team_ids
    rows = Escalation.objects.filter(team__in=teams, status=Escalation.Status.OPEN)
    if q:
        rows = rows.filter(Q(question__icontains=q) | Q(run__input__message__icontains=q))
    return rows


class InboxRows:
    """The inbox's rows in triage order, fetched a page at a time as a deferred join: the
    page's ids come first off the ``esc_queue`` index (narrow rows, already in order), and
    only those rows are joined to their runs, agents, teams and people."""

    def __init__(self, ids: QuerySet[Escalation]):
        self.ids = ids

    def count(self) -> int:
        return self.ids.count()

    def __getitem__(self, window: slice) -> list[Escalation]:
        return list(
            Escalation.objects.filter(pk__in=self.ids.values("pk")[window])
            .select_related("run", "run__agent", "team", "claimed_by", "assigned_to")
            .only(*INBOX_ROW_FIELDS)
            .order_by(*INBOX_ORDER)
        )


def inbox_rows(user, filters: InboxFilters, scope: InboxScope | None = None) -> InboxRows:
    team_ids = (scope or inbox_scope(user)).team_ids
    return InboxRows(_searched(user, filters.q, team_ids).filter(filters.facet(user))
                     .order_by(*INBOX_ORDER))


@dataclass(frozen=True)
class Counted:
    """A count that stops at ``limit``: ``n`` is exact below it; at it, there are more."""

    n: int
    limit: int

    @property
    def more(self) -> bool:
        return self.n >= self.limit

    def __str__(self) -> str:  # "1,000+" past the cap, else the number
        return f"{self.limit - 1:,}+" if self.more else str(self.n)

    def __int__(self) -> int:
        return self.n

    def __bool__(self) -> bool:
        return self.n > 0


@dataclass
class Facet:
    name: str
    options: list[tuple[str, str, Counted]] = field(default_factory=list)  # value, label, count


def total_limit(page: int, per_page: int = INBOX_PAGE_SIZE) -> int:
    """How far the inbox's total is counted for page ``page``: past the cap, or past that
    page (so a deep page knows whether a next one exists)."""
    return max(INBOX_TOTAL_CAP, max(1, page) * per_page) + 1


def inbox_counts(user, filters: InboxFilters, scope: InboxScope | None = None,
                 page: int = 1) -> tuple[Counted, list[Facet]]:
    """The total (counted up to ``total_limit(page)``) and each filter option's count (up
    to ``INBOX_FACET_CAP`` + 1), in one query whatever the number of open escalations."""
    scope = scope or inbox_scope(user)
    one_team = len(scope.teams) == 1
    wanted: list[tuple[str, str, str, Q]] = [
        ("claimed", "all", "All", Q()),
        ("claimed", "mine", "Mine", claimed_q("mine", user)),
        ("claimed", "unclaimed", "Unclaimed", claimed_q("unclaimed", user)),
    ]
    # the only team's count is the count of all (the same query, read once)
    wanted += [("team", slug, name, Q() if one_team else Q(team_id=pk))
               for pk, slug, name in scope.teams]
    wanted += [("agent", slug, slug, agent_q(slug)) for slug in scope.agents]
    wanted += [("reason", r, r.replace("_", " "), Q(reason=r)) for r in ESCALATION_REASONS]
    conds = [filters.facet(user)] + [filters.facet(user, skip=name) & cond
                                     for name, _value, _label, cond in wanted]
    limits = [total_limit(page)] + [INBOX_FACET_CAP + 1] * len(wanted)
    base = _searched(user, filters.q, scope.team_ids)
    counts = _counts_of(base, conds, limits, exact=bool(filters.q))
    facets = {name: Facet(name) for name in ("claimed", "team", "agent", "reason")}
    for (name, value, label, _cond), n in zip(wanted, counts[1:], strict=True):
        if name in ("claimed", "team", "agent") or n or getattr(filters, name) == value:
            facets[name].options.append((value, label, n))
    return counts[0], list(facets.values())


def _counts_of(base: QuerySet[Escalation], conds: list[Q], limits: list[int],
               exact: bool = False) -> list[Counted]:
    """How many rows of ``base`` meet each condition, each counted up to its limit.

    A search reads every open row anyway (a substring is in no index): one pass counts
    them all. Otherwise each count is a subquery that stops at its limit — on the
    ``esc_queue`` and ``esc_reason`` indexes — all in one statement; a condition asked
    twice (the only team's count is the total's) is counted once, to the larger limit."""
    if exact:
        found = base.aggregate(**{f"c{i}": _count(cond) for i, cond in enumerate(conds)})
        return [Counted(min(found[f"c{i}"], limit), limit) for i, limit in enumerate(limits)]
    compiled: dict[tuple, int] = {}  # (sql, params) → its largest limit
    keys: list[tuple | None] = []
    for cond, limit in zip(conds, limits, strict=True):
        try:
            query = base.filter(cond).order_by().values("pk").query
            sql, sql_params = query.get_compiler(using=base.db).as_sql()
        except EmptyResultSet:  # a condition nothing can meet (no team, say)
            keys.append(None)
            continue
        key = (sql, tuple(sql_params))
        compiled[key] = max(limit, compiled.get(key, 0))
        keys.append(key)
    found: dict[tuple | None, Counted] = {None: Counted(0, 1)}
    if compiled:
        parts, params = [], []
        for i, ((sql, sql_params), limit) in enumerate(compiled.items()):
            # Django compiled ``sql`` (its values are parameters); the limit is an int
            parts.append(f"(SELECT COUNT(*) FROM ({sql} LIMIT {int(limit)}) AS c{i})")  # nosec B608
            params.extend(sql_params)
        with connections[base.db].cursor() as cursor:
            cursor.execute("SELECT " + ", ".join(parts), params)
            row = cursor.fetchone()
        found |= {key: Counted(int(n), limit)
                  for (key, limit), n in zip(compiled.items(), row, strict=True)}
    return [found[key] for key in keys]


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
