"""A team's daily budget under concurrent runs: never overshot.

A team gets a daily budget worth about 20 runs (measured on pilot runs of another team),
then 50 of its runs are submitted at once and executed by real workers, 50 at a time —
Postgres + Redis: two ``celery -A agentdesk worker --pool threads -c 25`` processes;
embedded: the in-process worker thread pool with 50 threads. Every model call reserves its
worst case on the team's ``TeamDailySpend`` row first and settles the real cost after; a
call that does not fit ends its run with reason ``team_budget``.
Overshoot = max(0, spent today − budget), from ``runs_teamdailyspend``.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from . import deploy, workload
from .report import Section, Target, fmt, svg_series

section = Section("Team daily budget under concurrency")
TARGETS = {"budget_overshoot_usd": Target("<=", 0.0, "USD")}
RUNS = 50
RUNS_WORTH = 20
PILOT_RUNS = 4
LATENCY_SCALE = 1.0  # sim-small 150 ms, sim-large 600 ms: the runs overlap
WORKERS, THREADS = 2, 25
MESSAGES = {"status", "refund_under_approval"}


def _messages() -> list[str]:
    return [t["message"] for t in workload.load_tasks_plain() if t["category"] in MESSAGES]


def run() -> dict[str, float]:
    env = deploy.for_workers("budget", latency_scale=LATENCY_SCALE)
    try:
        messages = _messages()
        pilot = workload.make_team("bench-budget-pilot")
        costs = []
        for message in messages[:PILOT_RUNS]:
            run_id = workload.submit(pilot, message)
            workload.drive(run_id)
            costs.append(workload.outcome(run_id).cost_usd)
        per_run = sum(costs, Decimal("0")) / len(costs)
        budget = (per_run * RUNS_WORTH).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
        team = workload.make_team("bench-budget", daily_budget_usd=budget)
        with env.running(WORKERS, THREADS):
            ids = [workload.submit(team, messages[PILOT_RUNS + i]) for i in range(RUNS)]
            settled = deploy.settle(ids, timeout=180)
        errors = env.worker_errors()
        return _summarise(team, ids, budget, per_run, settled, errors)
    finally:
        env.close()


def _summarise(team, ids, budget: Decimal, per_run: Decimal, settled: bool,
               errors) -> dict[str, float]:
    from django.db.models import Count, Sum

    from runs.budgets import spent_today
    from runs.models import Run, Step, TeamDailySpend

    spent = spent_today(team.pk)
    row = TeamDailySpend.objects.filter(team=team).first()
    reserved = row.reserved_usd if row else Decimal("0")
    runs = Run.objects.filter(pk__in=ids)
    by_end = list(runs.values("status", "reason").annotate(n=Count("id")).order_by("-n"))
    run_costs = runs.aggregate(total=Sum("cost_usd"))["total"] or Decimal("0")
    hit = runs.filter(reason="team_budget").count()
    metrics = {
        "budget_overshoot_usd": float(max(Decimal("0"), spent - budget)),
        "budget_runs_team_budget": hit,
        "budget_runs_succeeded": runs.filter(status="succeeded").count(),
        "budget_spent_fraction": round(float(spent / budget), 4) if budget else 0.0,
    }
    steps = list(Step.objects.filter(run__in=ids, kind="model").order_by("created_at")
                 .values_list("created_at", "cost_usd"))
    s = section
    s.lines.clear()
    s.add(f"**Mode:** {deploy.mode_label()}. **Size:** {RUNS} concurrent runs of one team; "
          f"budget {budget} USD ≈ {RUNS_WORTH} runs at {fmt(float(per_run))} USD per run "
          f"(mean of {PILOT_RUNS} pilot runs); simulator latency ×{LATENCY_SCALE} "
          "(sim-small 150 ms). **How:** " + (__doc__ or "").split("\n\n")[1].replace("\n", " "))
    why = {}
    if metrics["budget_overshoot_usd"] > 0:
        why["budget_overshoot_usd"] = "spent more than the budget: the reservation leaked"
    s.verdicts(metrics, TARGETS, why)
    s.table(["", "USD"], [
        ["daily budget", float(budget)], ["spent today (runs_teamdailyspend)", float(spent)],
        ["Σ run costs", float(run_costs)], ["still reserved after the runs", float(reserved)],
        ["overshoot", metrics["budget_overshoot_usd"]],
    ])
    s.add(f"All runs settled: {'yes' if settled else '**no** (timed out)'}. Runs by end "
          f"state ({hit} ended with reason `team_budget`):")
    s.table(["status", "reason", "runs"], [[r["status"], r["reason"] or "—", r["n"]]
                                           for r in by_end])
    if errors:
        s.add("Errors in the worker logs:")
        s.table(["count", "error"], [[n, f"`{e}`"] for e, n in errors.most_common(6)])
    if steps:
        t0 = steps[0][0]
        total, points = Decimal("0"), []
        for at, cost in steps:
            total += cost
            points.append(((at - t0).total_seconds(), float(total) * 1000))
        end = points[-1][0]
        s.add("Cumulative spend (milli-USD) as model calls complete, against the budget:")
        s.add(svg_series({"spent": points, "budget": [(0, float(budget) * 1000),
                                                      (end, float(budget) * 1000)]},
                         "seconds since the first model call", "milli-USD"))
    s.add("Reservations are for the worst case of each call (prompt estimate + "
          "`max_output_tokens` at the input price), so while many runs are in flight the "
          "budget is held by reservations larger than the final costs: runs are turned away "
          "before the money is actually spent, and the spent fraction stays below 1.")
    return metrics
