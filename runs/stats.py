"""Dashboard reads: aggregates computed in the database, scoped to the user's teams.

Each function is a handful of GROUP BY queries over an indexed time window; nothing loads
rows into Python except the median time-to-decision on SQLite, which has no percentile
aggregate (Postgres computes it with ``percentile_cont``).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Aggregate, Count, FloatField, Q, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.utils import timezone

from agentdesk.runtime.outcomes import RunStatus, StepKind

from . import selectors
from .models import AuditEvent, Escalation, Step

OVERRIDES = ("reject", "take_over")
STATUS_ORDER = [s.value for s in RunStatus]


class Median(Aggregate):
    """Postgres: the 50th percentile of an expression."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


@dataclass(frozen=True)
class Window:
    days: int
    start: date
    end: date  # inclusive

    @classmethod
    def last(cls, days: int) -> Window:
        end = timezone.localdate()
        return cls(days=days, start=end - timedelta(days=days - 1), end=end)

    @property
    def since(self):
        return selectors.day_start(self.start)

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]


OVERRIDDEN = "succeeded_overridden"  # succeeded, but after an operator overrode the agent


def runs_by_outcome(user, window: Window) -> list[tuple[str, int]]:
    """Runs per status; a success after an operator overrode the agent counts apart."""
    rows = selectors.runs_for(user).filter(created_at__gte=window.since) \
        .values_list("status", "overridden").annotate(n=Count("id")).order_by()
    counts: dict[str, int] = {}
    for status, overridden, n in rows:
        key = OVERRIDDEN if status == RunStatus.SUCCEEDED and overridden else status
        counts[key] = counts.get(key, 0) + n
    order = [*STATUS_ORDER[:STATUS_ORDER.index(RunStatus.SUCCEEDED) + 1], OVERRIDDEN,
             *STATUS_ORDER[STATUS_ORDER.index(RunStatus.SUCCEEDED) + 1:]]
    return [(s, counts[s]) for s in order if counts.get(s)]


def escalation_summary(user, window: Window) -> dict:
    runs = selectors.runs_for(user).filter(created_at__gte=window.since)
    counts = runs.aggregate(total=Count("id", distinct=True),
                            escalated=Count("escalations__run_id", distinct=True))
    reasons = list(
        Escalation.objects.filter(team__in=selectors.teams_for(user),
                                  created_at__gte=window.since)
        .values_list("reason").annotate(n=Count("id")).order_by("-n", "reason")
    )
    total = counts["total"] or 0
    rate = counts["escalated"] / total if total else 0.0
    return {"runs": total, "escalated": counts["escalated"], "rate": rate,
            "reasons": [(r.replace("_", " "), n) for r, n in reasons]}


def cost_per_day(user, window: Window) -> list[tuple[date, Decimal]]:
    rows = dict(
        selectors.runs_for(user).filter(created_at__gte=window.since)
        .annotate(day=TruncDate("created_at")).values_list("day")
        .annotate(cost=Sum("cost_usd")).order_by()
    )
    return [(d, rows.get(d) or Decimal(0)) for d in window.dates()]


def cost_per_agent(user, window: Window) -> list[tuple[str, Decimal]]:
    return list(
        selectors.runs_for(user).filter(created_at__gte=window.since)
        .values_list("agent__slug").annotate(cost=Sum("cost_usd")).order_by("-cost")
    )


def tier_mix(user, window: Window) -> tuple[list[date], list[tuple[str, list[int]]]]:
    """Model steps per day, by tier (small / large / …)."""
    rows = (
        Step.objects.filter(run__team__in=selectors.teams_for(user), kind=StepKind.MODEL,
                            created_at__gte=window.since)
        .annotate(day=TruncDate("created_at")).values_list("day", "tier")
        .annotate(n=Count("id")).order_by()
    )
    by_tier: dict[str, dict[date, int]] = {}
    for day, tier, n in rows:
        by_tier.setdefault(tier or "unknown", {})[day] = n
    days = window.dates()
    order = sorted(by_tier, key=lambda t: (t != "small", t != "large", t))
    return days, [(t, [by_tier[t].get(d, 0) for d in days]) for t in order]


def tier_totals(series: list[tuple[str, list[int]]]) -> list[tuple[str, int]]:
    return [(tier, sum(values)) for tier, values in series]


def operators(user, window: Window) -> list[dict]:
    """Per decider: decisions, median time-to-decision, override rate (reject, edited
    approve, take over), from the audit log — the attributed record of every decision."""
    events = AuditEvent.objects.filter(team__in=selectors.teams_for(user),
                                       action="escalation.decided",
                                       created_at__gte=window.since)
    override = Q(detail__decision__in=OVERRIDES) | Q(detail__edited=True)
    seconds = Cast(KT("detail__seconds_to_decision"), FloatField())
    fields = {"decisions": Count("id"), "overrides": Count("id", filter=override)}
    postgres = connection.vendor == "postgresql"
    if postgres:
        fields["median"] = Median(seconds)
    rows = list(
        events.values("actor__username", "api_key__name").annotate(**fields)
        .order_by("-decisions", "actor__username")
    )
    if not postgres:
        spans: dict[tuple, list[float]] = {}
        for who, key, value in events.annotate(s=Coalesce(seconds, 0.0)).values_list(
                "actor__username", "api_key__name", "s"):
            spans.setdefault((who, key), []).append(value)
        for row in rows:
            values = spans.get((row["actor__username"], row["api_key__name"]), [])
            row["median"] = statistics.median(values) if values else None
    return [
        {"who": row["actor__username"] or (f"API key {row['api_key__name']}"
                                           if row["api_key__name"] else "someone"),
         "decisions": row["decisions"], "overrides": row["overrides"],
         "override_rate": row["overrides"] / row["decisions"] if row["decisions"] else 0.0,
         "median_seconds": row["median"]}
        for row in rows
    ]
