"""The dashboard: outcomes, escalations, cost, tiers and operators, as server-side SVG."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .. import calibrations, charts, stats
from ..templatetags.console import usd

WINDOWS = (7, 14, 30)
STATUS_COLORS = {"queued": "#8b8fa3", "running": "#3358d4", "waiting_human": "#d98a00",
                 "succeeded": "#1c7a4a", stats.OVERRIDDEN: "#6a8f3a", "failed": "#c0352b",
                 "aborted": "#8a6d57"}

OUTCOME_LABELS = {stats.OVERRIDDEN: "succeeded after override",
                  "waiting_human": "waiting for human"}


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    days = int(request.GET["days"]) if request.GET.get("days") in {str(d) for d in WINDOWS} \
        else 14
    window = stats.Window.last(days)
    user = request.user
    outcomes = stats.runs_by_outcome(user, window)
    escalations = stats.escalation_summary(user, window)
    per_day = stats.cost_per_day(user, window)
    per_agent = stats.cost_per_agent(user, window)
    tier_days, tiers = stats.tier_mix(user, window)
    money = usd
    labels = [f"{d:%b} {d.day}" for d in tier_days]
    ticks = charts.day_ticks(tier_days)
    context = {
        "days": days, "windows": WINDOWS, "window": window,
        "outcomes_chart": charts.bar_chart(
            [(OUTCOME_LABELS.get(s, s.replace("_", " ")), n) for s, n in outcomes],
            label="Runs by outcome",
            colors={OUTCOME_LABELS.get(s, s.replace("_", " ")): STATUS_COLORS[s]
                    for s, _ in outcomes}),
        "escalations": escalations,
        "reasons_chart": charts.bar_chart(escalations["reasons"], label="Escalation reasons",
                                          colors={r: "#d98a00" for r, _ in
                                                  escalations["reasons"]}),
        "cost_total": sum(cost for _, cost in per_day),
        "cost_day_chart": charts.line_chart(
            [(f"{d:%b} {d.day}", float(c)) for d, c in per_day], label="Cost per day",
            fmt=money, ticks=ticks),
        "cost_agent_chart": charts.bar_chart([(a, float(c or 0)) for a, c in per_agent],
                                             label="Cost per agent", fmt=money),
        "tier_chart": charts.stacked_bars(labels, tiers, label="Model steps per day by tier",
                                          ticks=ticks),
        "tier_legend": charts.legend([t for t, _ in tiers]),
        "tier_totals": stats.tier_totals(tiers),
        "operators": stats.operators(user, window),
        "calibration": calibrations.for_user(user),
    }
    return render(request, "runs/dashboard.html", context)
