"""One pass of the tiering benchmark: every task of a part of the evaluation set, run under
one policy, on a team of its own, and what each run and each model decision came to.

Runs are created with ``submit_run`` and driven with ``runs.execution.advance`` (the
Celery task's own code) in a few threads, against the simulator over HTTP through the
``openai`` client — the engine in this process, the simulator in its own.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import workload
from .eval.judge import judge

EVAL_THREADS = 6


@dataclass
class Decision:
    """One model step that proposed something, judged against the task."""

    run_id: int
    model: str
    tier: str
    confidence: float | None
    correct: bool | None  # None: a question to the operator (not judged)
    signals: dict[str, float | None]


@dataclass
class Pass:
    name: str
    threshold: float
    runs: list[dict[str, Any]]
    steps: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def success(self) -> float:
        return sum(r["ok"] for r in self.runs) / self.n

    @property
    def cost(self) -> Decimal:
        return sum((r["got"].cost_usd for r in self.runs), Decimal("0"))

    @property
    def escalated(self) -> float:
        return sum(r["got"].status == "waiting_human" for r in self.runs) / self.n

    def decisions(self) -> list[Decision]:
        by_id = {r["run_id"]: r["task"] for r in self.runs}
        out = []
        for run_id, steps in self.steps.items():
            for step in steps:
                args = step["args"] or {}
                if step["result"] is None:
                    continue
                out.append(Decision(run_id, step["model"], args.get("tier") or step["tier"],
                                    step["confidence"], judge(by_id[run_id], step["result"]),
                                    args.get("signals") or {}))
        return out

    def acting(self) -> list[Decision]:
        """The decisions that act (tool calls and answers), i.e. the judged ones."""
        return [d for d in self.decisions() if d.correct is not None]

    def confidently_wrong(self) -> tuple[int, int]:
        """(acting decisions at or above the threshold and wrong, all acting decisions)."""
        acting = self.acting()
        wrong = sum(1 for d in acting if not d.correct and d.confidence is not None
                    and d.confidence >= self.threshold - 1e-9)
        return wrong, len(acting)

    def confidently_wrong_runs(self) -> list[dict[str, Any]]:
        """Runs in which a wrong decision was let through without a human's doubt."""
        bad = {d.run_id for d in self.acting() if not d.correct and d.confidence is not None
               and d.confidence >= self.threshold - 1e-9}
        return [r for r in self.runs if r["run_id"] in bad]

    def calls(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for steps in self.steps.values():
            for step in steps:
                counts[step["model"]] += 1
                samples = (step["args"] or {}).get("agreement_samples") or []
                counts[f"{step['model']} samples"] += len(samples)
        return dict(counts)


def make_policy(name: str, *, threshold: float, signals: list[str], small: str,
                large: str) -> Any:
    """A copy of the seeded default policy with this threshold, signals and models."""
    from runs.models import Policy

    policy = Policy.objects.get(name="support-default")
    policy.pk = None
    policy.name = name
    policy.confidence_threshold = threshold
    policy.confidence_signals = list(signals)
    policy.small_model, policy.large_model = small, large
    policy.save()
    return policy


def make_team(slug: str, policy) -> Any:
    from runs.models import Agent, Team

    team = Team.objects.create(slug=slug, name=slug)
    Agent.objects.create(team=team, slug=workload.AGENT, name="Support: refunds", policy=policy)
    return team


def run_pass(name: str, threshold: float, tasks: list[dict[str, Any]], *, signals: list[str],
             small: str = "sim-small", large: str = "sim-large") -> Pass:
    """Every task under a fresh copy of the policy (threshold, signals, models)."""
    policy = make_policy(f"bench-{name}", threshold=threshold, signals=signals, small=small,
                         large=large)
    team = make_team(f"bench-{name}", policy)
    runs = _evaluate(name, team, tasks)
    return Pass(name=name, threshold=threshold, runs=runs, steps=_model_steps(team))


def _one(team, task: dict[str, Any]) -> dict[str, Any]:
    from django.db import connection

    try:
        run_id = workload.submit(team, task["message"])
        workload.drive(run_id)
        got = workload.outcome(run_id)
    finally:
        connection.close()  # this thread's connection; the pool's threads come and go
    ok, diff = workload.matches(task["expected"], got)
    return {"task": task, "run_id": run_id, "ok": ok, "diff": diff, "got": got}


def _evaluate(name: str, team, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every task under one policy: in a few threads (runs are independent), except the
    backend-down tasks, which run one at a time on a closed circuit breaker — each makes
    three failed tries, and two at once would open the lookup tool's breaker (five failures)
    for the tasks around them: the breaker working, not what this set measures.

    Each pass gets a response-cache namespace of its own: passes ask the simulator some of
    the very requests other passes make, and a hit across passes would make the later pass
    look cheaper than it is.
    """
    from django.conf import settings

    from runs.breakers import reset_breakers

    base = settings.CACHES["default"].setdefault("KEY_PREFIX", "")
    settings.CACHES["default"]["KEY_PREFIX"] = f"{base}-{name}"  # for the pool's new threads
    reset_breakers()
    try:
        plain = [t for t in tasks if t["category"] not in workload.FAULTY]
        with ThreadPoolExecutor(EVAL_THREADS) as pool:
            done = list(pool.map(lambda task: _one(team, task), plain))
        faulty = [t for t in tasks if t["category"] in workload.FAULTY]
        with ThreadPoolExecutor(1) as pool:
            for task in faulty:
                reset_breakers()
                done.append(pool.submit(_one, team, task).result())
    finally:
        settings.CACHES["default"]["KEY_PREFIX"] = base
    order = {task["id"]: i for i, task in enumerate(tasks)}
    return sorted(done, key=lambda r: order[r["task"]["id"]])


def _model_steps(team) -> dict[int, list[dict[str, Any]]]:
    from runs.models import Step

    by_run: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rows = Step.objects.filter(run__team=team, kind="model").order_by("run_id", "index")
    for row in rows.values("run_id", "index", "tier", "model", "confidence", "result",
                           "cost_usd", "args", "tokens_in"):
        by_run[row["run_id"]].append(row)
    return dict(by_run)
