"""Operator console latency at scale: 10,000 open escalations, a month of runs.

One process, Django on a fresh database (``bench.deploy.in_process``). The data is written
in bulk (escalations on waiting runs, finished runs with model steps and decisions in the
audit log), then each console request is made through Django's test client as a logged-in
operator — the full view, selector, template and middleware path, without a network hop.
Reported: server time per request (p50/p95) and the number of SQL queries of one request.

Inbox at scale (issue 16): a second team in the same database has ``SMALL_OPEN`` open
escalations (the same mix) and an operator of its own. Its inbox and the big team's are
requested alternately, ``SCALE_REPEAT`` times each, so the machine's load weighs on both
alike: ``inbox_scale_ratio`` = p95 with 10,000 open ÷ p95 with 10 open, and the query
count of each (it must be the same).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from . import deploy
from .report import Section, Target, percentile

section = Section("Console latency")
OPEN_ESCALATIONS = 10_000
SMALL_OPEN = 10
FINISHED_RUNS = 3_000
REPEAT = 30
SCALE_REPEAT = 40
# Times are reported against no absolute target any more (issue 16: targets are ratios);
# the inbox's are the ratio of 10,000 open to 10, and the same query count for both.
TARGETS = {
    "inbox_scale_ratio": Target("<=", 1.5, "(p95 at 10,000 open ÷ at 10)"),
    "inbox_query_growth": Target("<=", 0, "queries (10,000 open − 10)"),
    "console_inbox_queries": Target("<=", 8, "queries"),
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


def open_escalations(team, agent, operator, count: int, now) -> None:
    """``count`` open escalations (the bench's mix of reasons, deadlines and claims), each
    on a waiting run of ``team``."""
    from runs import claims
    from runs.models import Escalation, PolicySnapshotRecord, Run

    reasons = ["approval_required", "low_confidence", "tool_failed", "step_limit",
               "tool_outcome_unknown"]
    snapshot = PolicySnapshotRecord.of({"max_steps": 20})
    waiting = Run.objects.bulk_create([
        Run(team=team, agent=agent, input={"message": f"I want a refund, order {1000 + i}"},
            status="waiting_human", snapshot=snapshot, state={})
        for i in range(count)
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


def seed_small(now) -> object:
    """A second team with ``SMALL_OPEN`` open escalations and an operator of its own."""
    from django.contrib.auth import get_user_model

    from runs.models import Agent, Membership, Policy, Team

    team = Team.objects.create(slug="bench-small", name="bench-small")
    policy = Policy.objects.create(team=team, name="small-default")
    agent = Agent.objects.create(team=team, slug="support-refunds", name="Support: refunds",
                                 policy=policy)
    user = get_user_model().objects.create_user("operator-small", password=deploy.PASSWORD)
    Membership.objects.create(user=user, team=team, role="operator")
    open_escalations(team, agent, user, SMALL_OPEN, now)
    return user


def seed() -> tuple[object, int]:
    """Bulk data: open escalations on waiting runs, finished runs with steps, decisions."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from runs.demo import seed_demo
    from runs.models import Agent, AuditEvent, Escalation, PolicySnapshotRecord, Run, Step, Team

    seed_demo(deploy.PASSWORD)
    team = Team.objects.get(slug="demo")
    agent = Agent.objects.get(team=team)
    operator = get_user_model().objects.get(username="operator")
    now = timezone.now()
    open_escalations(team, agent, operator, OPEN_ESCALATIONS, now)
    finished = Run.objects.bulk_create([
        Run(team=team, agent=agent, input={"message": "Where is my order 1077?"},
            status=("succeeded", "failed", "aborted")[i % 3], cost_usd=Decimal("0.0004"),
            snapshot=PolicySnapshotRecord.of({"max_steps": 20}), state={}, step_count=4)
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


def timed(call: Callable[[], object], queries_out: list | None = None) -> tuple[float, int]:
    """Milliseconds of one request, and its SQL queries (their text and time appended to
    ``queries_out``)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = call()
        elapsed = (time.perf_counter() - started) * 1000
    status = getattr(response, "status_code", 200)
    if status >= 400:
        raise RuntimeError(f"console request failed with {status}")
    if queries_out is not None:
        queries_out.append([(q["sql"], float(q["time"])) for q in queries.captured_queries])
    return elapsed, len(queries)


def run() -> dict[str, float]:
    env = deploy.in_process("console_latency", latency_scale=0.0)
    try:
        from django.test import Client
        from django.utils import timezone

        started = time.monotonic()
        operator, esc = seed()
        operator_small = seed_small(timezone.now())
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
        small = Client()
        small.force_login(operator_small)
        scale = inbox_scale(client, small)
        metrics.update(scale.metrics())
        section.add(markdown(metrics, seeded_s=seeded_s))
        section.add(scale.markdown())
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


@dataclass
class InboxScale:
    """The two inboxes, requested alternately: times, query counts, each query's time."""

    small_ms: list[float] = field(default_factory=list)
    big_ms: list[float] = field(default_factory=list)
    small_counts: list[int] = field(default_factory=list)
    big_counts: list[int] = field(default_factory=list)
    small_queries: list = field(default_factory=list)
    big_queries: list = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        small, big = percentile(self.small_ms, 95), percentile(self.big_ms, 95)
        return {
            "inbox_10_p95_ms": round(small, 2),
            "inbox_10000_p95_ms": round(big, 2),
            "inbox_10_p50_ms": round(percentile(self.small_ms, 50), 2),
            "inbox_10000_p50_ms": round(percentile(self.big_ms, 50), 2),
            "inbox_10_queries": float(max(self.small_counts)),
            "inbox_10000_queries": float(max(self.big_counts)),
            "inbox_query_growth": float(max(self.big_counts) - max(self.small_counts)),
            "inbox_scale_ratio": round(big / small, 3),
        }

    def markdown(self) -> str:
        m = self.metrics()
        verdict = "met" if TARGETS["inbox_scale_ratio"].met(m["inbox_scale_ratio"]) \
            else "**missed**"
        lines = [
            "### Inbox at scale",
            "",
            f"The same page (`/inbox/`, first page, no filter) for an operator of a team with "
            f"{SMALL_OPEN} open escalations and for one of the team with "
            f"{OPEN_ESCALATIONS:,}, in the same database, requested alternately "
            f"{SCALE_REPEAT} times each after a warm-up.",
            "",
            "| open escalations | p50 ms | p95 ms | SQL queries (min–max) |",
            "|---|---|---|---|",
            f"| {SMALL_OPEN} | {m['inbox_10_p50_ms']:.1f} | {m['inbox_10_p95_ms']:.1f} | "
            f"{min(self.small_counts)}–{max(self.small_counts)} |",
            f"| {OPEN_ESCALATIONS:,} | {m['inbox_10000_p50_ms']:.1f} | "
            f"{m['inbox_10000_p95_ms']:.1f} | {min(self.big_counts)}–{max(self.big_counts)} |",
            "",
            f"`inbox_scale_ratio` = {m['inbox_scale_ratio']:.2f} (target "
            f"{TARGETS['inbox_scale_ratio']}: {verdict}); query count "
            + ("the same." if m["inbox_query_growth"] == 0 else
               f"**grows by {m['inbox_query_growth']:.0f}**."),
            "",
            "Where the database time goes — each query's mean time (Django's own timing of "
            "the cursor call, the round trip, which it rounds to the millisecond per query; "
            "not the rendering):",
            "",
            "| query | ms at 10 | ms at 10,000 |",
            "|---|---|---|",
        ]
        small, big = _mean_queries(self.small_queries), _mean_queries(self.big_queries)
        for i in range(max(len(small), len(big))):
            sql = (big[i] if i < len(big) else small[i])[0]
            lines.append(f"| `{_short(sql)}` | "
                         f"{small[i][1] if i < len(small) else float('nan'):.2f} | "
                         f"{big[i][1] if i < len(big) else float('nan'):.2f} |")
        total_small, total_big = sum(t for _, t in small), sum(t for _, t in big)
        lines += [
            "",
            f"All queries: {total_small:.1f} ms at {SMALL_OPEN}, {total_big:.1f} ms at "
            f"{OPEN_ESCALATIONS:,}; the rest of the request (view, template, middleware) "
            f"{m['inbox_10_p50_ms'] - total_small:.1f} ms and "
            f"{m['inbox_10000_p50_ms'] - total_big:.1f} ms at p50 (page of "
            f"{min(SMALL_OPEN, 50)} and 50 rows).",
        ]
        return "\n".join(lines) + "\n"


def _mean_queries(samples: list) -> list[tuple[str, float]]:
    """Per position in the request, the SQL (of the first sample) and the mean ms."""
    if not samples:
        return []
    width = min(len(x) for x in samples)
    return [(samples[0][i][0], 1000 * sum(x[i][1] for x in samples) / len(samples))
            for i in range(width)]


def _short(sql: str) -> str:
    sql = " ".join(sql.split())
    head = sql[:60]
    where = sql.find(" FROM ")
    table = sql[where + 6:where + 40].split(" ")[0] if where >= 0 else ""
    return (head + (f" … FROM {table}" if table and table not in head else "") + " …") \
        .replace("|", "\\|").replace("`", "'")


def inbox_scale(big: object, small: object) -> InboxScale:
    out = InboxScale()
    for client in (small, big, small, big):  # warm: templates, sessions, caches
        client.get("/inbox/")
    for _ in range(SCALE_REPEAT):
        ms, n = timed(lambda: small.get("/inbox/"), out.small_queries)
        out.small_ms.append(ms)
        out.small_counts.append(n)
        ms, n = timed(lambda: big.get("/inbox/"), out.big_queries)
        out.big_ms.append(ms)
        out.big_counts.append(n)
    return out
