"""The work the benchmarks submit: tasks from the evaluation set, runs, and their outcomes.

Runs are created with ``runs.services.submit_run`` (the path of the web form and the API).
In-process benchmarks then drive them with ``runs.execution.advance`` — exactly what the
Celery task does — instead of waiting for a worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

TASKS_FILE = Path(__file__).parent / "eval" / "tasks.jsonl"
AGENT = "support-refunds"
# Categories whose tools are fault-injected with retries and backoff (tool latency, not
# engine time) or that rely on per-process fault counters: kept out of timing runs.
FAULTY = {"backend_down"}
FLAKY_ORDER = "9997"
# What the load benchmarks submit: requests that end without a human (answers, refunds
# under the approval amount) and one that waits for approval.
PLAIN = {"status", "refund_under_approval", "refund_over_approval"}


def load_tasks() -> list[dict[str, Any]]:
    return [json.loads(line) for line in TASKS_FILE.read_text().splitlines() if line.strip()]


def timing_tasks() -> list[dict[str, Any]]:
    """The evaluation mix without fault-injected tools (their retries sleep)."""
    return [t for t in load_tasks()
            if t["category"] not in FAULTY and FLAKY_ORDER not in t["message"]]


def load_tasks_plain() -> list[dict[str, Any]]:
    return [t for t in load_tasks()
            if t["category"] in PLAIN and FLAKY_ORDER not in t["message"]]


def make_team(slug: str, *, large_only: bool = False, daily_budget_usd: Decimal | None = None):
    """A team with the support agent, on the default tiered policy or a large-only copy."""
    from runs.models import Agent, Policy, Team

    team = Team.objects.create(slug=slug, name=slug, daily_budget_usd=daily_budget_usd)
    policy = Policy.objects.get(name="support-default")  # the seeded one (team demo)
    if large_only:  # policies belong to a team: the large-only one is this team's
        policy, _ = Policy.objects.get_or_create(
            team=team, name="large-only",
            defaults={"small_model": "sim-large", "large_model": "sim-large"})
    Agent.objects.create(team=team, slug=AGENT, name="Support: refunds", policy=policy)
    return team


def submit(team, message: str) -> int:
    from runs.services import submit_run

    return submit_run(team=team, agent_slug=AGENT, task_input={"message": message},
                      user_id=None).pk


def drive(run_id: int, max_slices: int = 50) -> None:
    """Advance a run until it ends or waits for a human, as its Celery task would."""
    from runs import execution

    for _ in range(max_slices):
        if execution.advance(run_id) != execution.MORE_WORK:
            return
    raise RuntimeError(f"run {run_id} did not settle in {max_slices} slices")


@dataclass(frozen=True)
class Outcome:
    status: str
    reason: str
    answer: str
    refunds: list[dict[str, Any]]
    proposed: dict[str, Any] | None
    cost_usd: Decimal
    steps: int


def outcome(run_id: int) -> Outcome:
    from runs.models import Escalation, Run, ToolCall

    run = Run.objects.get(pk=run_id)
    refunds = [
        {"order_id": str(c.args.get("order_id")), "amount": float(c.args.get("amount", 0))}
        for c in ToolCall.objects.filter(run=run, tool="issue_refund", status="succeeded")
    ]
    esc = Escalation.objects.filter(run=run, status="open").order_by("-pk").first()
    proposed = None
    if esc is not None and esc.proposed_tool:
        proposed = {"tool": esc.proposed_tool, **esc.proposed_args}
    return Outcome(status=run.status, reason=run.reason, answer=run.answer, refunds=refunds,
                   proposed=proposed, cost_usd=run.cost_usd, steps=run.step_count)


def matches(expected: dict[str, Any], got: Outcome) -> tuple[bool, str]:
    """Did the run reach the expected outcome? Returns (ok, what differs)."""
    if got.status != expected["status"]:
        return False, f"status {got.status}/{got.reason or '-'} != {expected['status']}"
    if "reason" in expected and got.reason != expected["reason"]:
        return False, f"reason {got.reason} != {expected['reason']}"
    want = sorted((r["order_id"], float(r["amount"])) for r in expected.get("refunds", []))
    have = sorted((r["order_id"], r["amount"]) for r in got.refunds)
    if want != have:
        return False, f"refunds {have} != {want}"
    if "proposed" in expected:
        p = got.proposed or {}
        e = expected["proposed"]
        if (p.get("tool"), str(p.get("order_id")), float(p.get("amount") or 0)) != (
            e["tool"], e["order_id"], float(e["amount"])
        ):
            return False, f"proposed {p} != {e}"
    for text in expected.get("answer_contains", []):
        if text not in got.answer:
            return False, f"answer lacks {text!r}: {got.answer[:90]!r}"
    return True, ""
