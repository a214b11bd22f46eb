"""Operator console latency at scale: 10,000 open escalations, a month of runs.

One process, Django on a fresh database (``bench.deploy.in_process``). The data is written
in bulk (escalations on waiting runs, finished runs with model steps and decisions in the
audit log), then each console request is made through Django's test client as a logged-in
operator — the full view, selector, template and middleware path, without a network hop.
Reported: server time per request (p50/p95) and the number of SQL queries of one request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from . import deploy
from .report import Section, Target, percentile

section = Section("Console latency")
OPEN_ESCALATIONS = 10_000
FINISHED_RUNS = 3_000
REPEAT = 30
TARGETS = {
    "console_inbox_p95_ms": Target("<=", 250.0, "ms"),
    "console_inbox_filtered_p95_ms": Target("<=", 250.0, "ms"),
    "console_escalation_p95_ms": Target("<=", 250.0, "ms"),
    "console_dashboard_p95_ms": Target("<=", 500.0, "ms"),
    "console_inbox_queries": Target("<=", 8, "queries"),
    "inbox_render_p95_ms": Target("<=", 150.0, "ms"),  # the name and target
}
REQUESTS: list[tuple[str, str, str]] = [  # metric stem, method, url ({esc} filled in)
    ("inbox", "get", "/inbox/"),
    ("inbox_filtered", "get", "/inbox/?reason=low_confidence&claimed=unclaimed&page=20"),
    ("inbox_search", "get", "/inbox/?q=question+4711"),
    ("inbox_partial", "hx", "/inbox/?page=3"),
    ("escalation", "get", "/escalations/{esc}/"),
    ("claim_release", "claim", "/escalations/{esc}/"),
    ("runs", "get", "/runs/?status=succeeded&page=10"),
    ("dashboard", "get", "/dashboard/?days=30"),
    ("audit", "get", "/audit/?page=5"),
]


def seed() -> tuple[object, int]:
    """Bulk data: open escalations on waiting runs, finished runs with steps, decisions."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from runs import claims
    from runs.demo import seed_demo
    from runs.models import Agent, AuditEvent, Escalation, Run, Step, Team

    seed_demo(deploy.PASSWORD)
    team = Team.objects.get(slug="demo")
    agent = Agent.objects.get(team=team)
    operator = get_user_model().objects.get(username="operator")
    now = timezone.now()
    reasons = ["approval_required", "low_confidence", "tool_failed", "step_limit",
               "tool_outcome_unknown"]
    waiting = Run.objects.bulk_create([
        Run(team=team, agent=agent, input={"message": f"I want a refund, order {1000 + i}"},
            status="waiting_human", policy_snapshot={"max_steps": 20}, state={})
        for i in range(OPEN_ESCALATIONS)
    ], batch_size=1000)
    Escalation.objects.bulk_create([
        Escalation(run=run, team=team, step_index=3, reason=reasons[i % len(reasons)],
                   question=f"Open question {i}", priority=claims.priority_for(
                       reasons[i % len(reasons)]),
                   deadline_at=now + timedelta(minutes=i % 240) if i % 7 else None,
                   claimed_by=operator if i % 11 == 0 else None,
                   claimed_at=now if i % 11 == 0 else None)
        for i, run in enumerate(waiting)
    ], batch_size=1000)
    finished = Run.objects.bulk_create([
        Run(team=team, agent=agent, input={"message": "Where is my order 1077?"},
            status=("succeeded", "failed", "aborted")[i % 3], cost_usd=Decimal("0.0004"),
            policy_snapshot={"max_steps": 20}, state={}, step_count=4)
        for i in range(FINISHED_RUNS)
    ], batch_size=1000)
    for i, run in enumerate(finished):  # spread over the month (created_at is auto_now_add)
        run.created_at = now - timedelta(days=i % 30, minutes=i)
    Run.objects.bulk_update(finished, ["created_at"], batch_size=1000)
    Step.objects.bulk_create([
        Step(run=run, index=k, kind="model", tier="small" if k % 3 else "large",
             model="sim-small", tokens_in=600, tokens_out=30, cost_usd=Decimal("0.0001"))
        for run in finished for k in range(4)
    ], batch_size=2000)
    AuditEvent.objects.bulk_create([
        AuditEvent(team=team, actor=operator, action="escalation.decided",
                   target_type="escalation", target_id=str(i),
                   detail={"decision": ("approve", "reject", "reply")[i % 3],
                           "seconds_to_decision": 30.0 + i % 300, "edited": i % 10 == 0})
        for i in range(FINISHED_RUNS)
    ], batch_size=2000)
    esc = Escalation.objects.filter(status="open").order_by("priority", "id").first()
    return operator, esc.pk


def timed(call: Callable[[], object]) -> tuple[float, int]:
    """Milliseconds of one request, and its SQL queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = call()
        elapsed = (time.perf_counter() - started) * 1000
    status = getattr(response, "status_code", 200)
    if status >= 400:
        raise RuntimeError(f"console request failed with {status}")
    return elapsed, len(queries)


def run() -> dict[str, float]:
    env = deploy.in_process("console_latency", latency_scale=0.0)
    try:
        from django.test import Client

        started = time.monotonic()
        operator, esc = seed()
        seeded_s = time.monotonic() - started
        client = Client()
        client.force_login(operator)
        metrics: dict[str, float] = {}
        for stem, method, url in REQUESTS:
            url = url.format(esc=esc)
            if method == "claim":
                def call(url=url):
                    client.post(f"{url}claim/", headers={"HX-Request": "true"})
                    return client.post(f"{url}release/", headers={"HX-Request": "true"})
            elif method == "hx":
                def call(url=url):
                    return client.get(url, headers={"HX-Request": "true"})
            else:
                def call(url=url):
                    return client.get(url)
            call()  # warm: templates, caches, the session
            samples = [timed(call) for _ in range(REPEAT)]
            times = [ms for ms, _ in samples]
            metrics[f"console_{stem}_p50_ms"] = round(percentile(times, 50), 2)
            metrics[f"console_{stem}_p95_ms"] = round(percentile(times, 95), 2)
            if stem == "inbox":
                metrics["console_inbox_queries"] = float(samples[-1][1])
                metrics["inbox_render_p95_ms"] = metrics["console_inbox_p95_ms"]
        section.add(markdown(metrics, seeded_s=seeded_s))
        return metrics
    finally:
        env.close()


def markdown(results: dict[str, float], seeded_s: float | None = None) -> str:
    """The benchmark's part of ``latest.md``: what was measured, and a table."""
    rows = []
    for stem, method, url in REQUESTS:
        p50, p95 = results.get(f"console_{stem}_p50_ms"), results.get(f"console_{stem}_p95_ms")
        if p50 is None:
            continue
        target = TARGETS.get(f"console_{stem}_p95_ms")
        verdict = "" if target is None else ("met" if target.met(p95) else "**missed**")
        what = "claim + release (2 POSTs)" if method == "claim" else f"`{url}`"
        rows.append(f"| {what} | {p50:.1f} | {p95:.1f} | {target or ''} {verdict} |")
    queries = results.get("console_inbox_queries")
    lines = [
        f"**Mode:** {deploy.mode_label()}. **Data:** {OPEN_ESCALATIONS:,} open escalations "
        f"(each on a waiting run; one in 11 claimed), {FINISHED_RUNS:,} finished runs over 30 "
        f"days with 4 model steps each, {FINISHED_RUNS:,} decisions in the audit log"
        + (f" (written in {seeded_s:.0f} s)" if seeded_s is not None else "") + ".",
        "",
        f"Server time per request as a logged-in operator, {REPEAT} requests each after one "
        "warm-up (Django test client: middleware, view, selectors, templates; no network).",
        "",
        "| request | p50 ms | p95 ms | target (p95) |",
        "|---|---|---|---|",
        *rows,
        "",
    ]
    if queries is not None:
        lines.append(f"The inbox page makes **{queries:.0f} SQL queries** whatever the number "
                     "of escalations: the team scope, one aggregate for the total and every "
                     "filter count, one page of rows with run, agent, team and claimant "
                     "joined (no N+1), plus session and user.")
    return "\n".join(lines) + "\n"
