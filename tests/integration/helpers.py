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
