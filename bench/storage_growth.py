"""Does a step's storage grow with the run's length? Runs of ~5 steps against runs of ~50.

The same engine, store and database as every run (``runs.execution.advance``, the support
agent and its real ``lookup_order`` tool); only the model is scripted, because the
simulator's scenarios end after a lookup or two and a 50-step run needs a model that keeps
going. ``LongRunModel`` (the runtime's ``ModelClient``) looks up the next order until it
has made ``lookups`` calls, then answers; a run is retrieval, then (model, tool) ×
``lookups``, then the answering model step and the final step: 5 steps for one lookup, 51
for 24. The team's policy lifts the bounds such a run would hit (steps, tokens, the loop
and no-progress guards, which four distinct orders looked up again and again would trip).

Each phase starts on compacted tables (``VACUUM FULL``) and is measured with
``pg_database_size`` before and after, like ``storage_bytes_per_step``: every byte the
phase left behind, dead row versions of the run row's checkpoint UPDATEs included.
``storage_growth_50_vs_5`` = bytes per step of the long runs ÷ of the short ones.
"""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

ORDERS = ["1001", "1042", "1077", "2001"]
SHORT_LOOKUPS, LONG_LOOKUPS = 1, 24
SHORT_RUNS, LONG_RUNS = 200, 20  # about 1,000 steps each
THREADS = 4


class LongRunModel:
    """A ``ModelClient`` that calls ``lookup_order`` ``lookups`` times, then answers.

    Stateless (it reads the conversation), so threads can share it."""

    def __init__(self, lookups: int) -> None:
        self.lookups = lookups

    def complete(self, *, profile, messages: list[dict[str, Any]], tools, max_tokens: int,
                 sampling=None):
        from agentdesk.testing import answer, call

        done = sum(1 for m in messages if m.get("role") == "tool")
        if done < self.lookups:
            reply = call("lookup_order", {"order_id": ORDERS[done % len(ORDERS)]},
                         confidence=0.95)
        else:
            reply = answer(f"I looked up {done} orders; all are as the order service "
                           "says.", confidence=0.95)
        return dataclasses.replace(reply, model=profile.name)


@dataclass
class Phase:
    lookups: int
    runs: int
    steps: int = 0
    grew: int = 0
    tables: dict[str, int] | None = None
    state_bytes: float = 0.0  # mean JSON of Run.state at the end of a run

    @property
    def bytes_per_step(self) -> float:
        return self.grew / max(self.steps, 1)


def make_team():
    """A team whose policy lets a run go on for 50+ steps."""
    from decimal import Decimal

    from runs.models import Agent, Policy, Team

    from .workload import AGENT

    team = Team.objects.create(slug="bench-storage-long", name="bench-storage-long")
    policy = Policy.objects.create(
        team=team, name="long-runs", max_steps=500, max_seconds=3600, max_tokens=10_000_000,
        max_cost_usd=Decimal("100"), loop_repeat_limit=10_000, no_progress_limit=10_000,
    )
    Agent.objects.create(team=team, slug=AGENT, name="Support: refunds", policy=policy)
    return team


def measure(size, tables, compact) -> tuple[Phase, Phase]:
    """Both phases; ``size()``/``tables()``/``compact()`` are ``bench.storage``'s."""
    from runs import execution

    team = make_team()
    original = execution.gateway
    phases = (Phase(SHORT_LOOKUPS, SHORT_RUNS), Phase(LONG_LOOKUPS, LONG_RUNS))
    try:
        for phase in phases:
            model = LongRunModel(phase.lookups)
            execution.gateway = lambda *args, model=model, **kwargs: model
            compact()
            before, tables_before = size(), tables()
            ids = _drive_all(team, phase)
            phase.grew = size() - before
            phase.tables = {t: n - tables_before[t] for t, n in tables().items()}
            phase.steps = _steps(ids)
            phase.state_bytes = _state_bytes(ids)
    finally:
        execution.gateway = original
    return phases


def _drive_all(team, phase: Phase) -> list[int]:
    from .workload import submit

    # tasks of their own per phase: the response cache must not answer from the other one's
    ids = [submit(team, f"Check my orders, reference {phase.lookups}-{i:05d}")
           for i in range(phase.runs)]
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(_drive_one, ids))
    return ids


def _drive_one(run_id: int) -> None:
    from django.db import connection

    from .workload import drive

    try:
        drive(run_id, max_slices=200)
    finally:
        connection.close()


def _steps(ids: list[int]) -> int:
    from runs.models import Run, Step

    unfinished = Run.objects.filter(pk__in=ids).exclude(status="succeeded").count()
    if unfinished:
        statuses = set(Run.objects.filter(pk__in=ids).values_list("status", "reason"))
        raise RuntimeError(f"{unfinished} scripted runs did not succeed: {statuses}")
    return Step.objects.filter(run_id__in=ids).count()


def _state_bytes(ids: list[int]) -> float:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT AVG(length(state::text)) FROM runs_run WHERE id = ANY(%s)"
                    if connection.vendor == "postgresql" else
                    "SELECT AVG(length(state)) FROM runs_run WHERE id IN (SELECT value FROM "
                    "json_each(%s))", [ids if connection.vendor == "postgresql"
                                       else json.dumps(ids)])
        return float(cur.fetchone()[0] or 0)
