"""Helpers for integration tests: submit through the service, wait on the database."""

from __future__ import annotations

import json
from pathlib import Path

from runs import services
from runs.models import Escalation, Run
from tests.conftest import wait_for


def submit(team, user, message: str, agent: str = "support-refunds") -> Run:
    return services.submit_run(team=team, agent_slug=agent, task_input={"message": message},
                               user_id=user.pk)


def wait_status(run: Run, *statuses: str, timeout: float = 20.0) -> Run:
    def settled():
        run.refresh_from_db()
        return run.status in statuses and not run.lease_owner

    wait_for(settled, timeout)
    return run


def open_escalation(run: Run) -> Escalation:
    return Escalation.objects.get(run=run, status=Escalation.Status.OPEN)


def refunds(data_dir: Path) -> list[dict]:
    journal = data_dir / "refunds.jsonl"
    if not journal.exists():
        return []
    return [json.loads(line) for line in journal.read_text().splitlines() if line]


def writes(captured_queries: list[dict]) -> list[str]:
    """``UPDATE table`` / ``INSERT table`` of each write captured, in the order their rows
    are written: a ``WITH`` statement (``runs.statements.update_where_then_insert``) is
    its fenced UPDATE, the INSERT that selects from it, the other INSERTs that do
    (``also_``), then the UPDATE after it (``then_``)."""
    out = []
    for query in captured_queries:
        words = query["sql"].replace("(", " ").split()
        found: list[tuple[str, str]] = []  # (the WITH's name, or "" for the statement, write)
        for i, word in enumerate(words):
            name = words[i - 2] if i >= 2 and words[i - 1].upper() == "AS" else ""
            if word.upper() == "UPDATE" and (i == 0 or words[0].upper() == "WITH"):
                found.append((name, f"UPDATE {words[i + 1].strip(chr(34))}"))
            elif word.upper() == "INSERT" and words[i + 1].upper() == "INTO":
                found.append((name, f"INSERT {words[i + 2].strip(chr(34))}"))
        if words and words[0].upper() == "WITH":
            order = {"fenced": 0, "": 1, "then_": 3}  # the others: also_0, also_1 …
            found.sort(key=lambda named: order.get(named[0], 2))
        out += [write for _name, write in found]
    return out
