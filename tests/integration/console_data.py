"""Console test data written straight to the database: waiting runs with open escalations,
many of them fast (the inbox's filters, counts and pages do not need a worker to run)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from agentdesk.runtime.state import RunState
from runs import claims, enqueue
from runs.models import Agent, Escalation, Membership, Run, Team

PASSWORD = "test-password-1"


@pytest.fixture
def no_resume(monkeypatch):
    """Decisions on these hand-made runs resume nothing: no worker picks them up (their
    numbers stay put while a test reads them)."""
    monkeypatch.setattr(enqueue, "advance_run_on_commit", lambda run_id: None)


def waiting_run(team: Team, message: str = "I want a refund for order 1042",
                agent_slug: str = "support-refunds", reason: str = "approval_required") -> Run:
    agent = Agent.objects.select_related("policy").get(team=team, slug=agent_slug)
    run = Run.objects.create(
        team=team, agent=agent, input={"message": message}, status="waiting_human",
        reason=reason, policy_snapshot=agent.policy.snapshot().model_dump(
            mode="json"), state={},
    )
    state = RunState(run_id=str(run.pk), agent=agent.slug, input={"message": message},
                     status="waiting_human", phase="reason")
    Run.objects.filter(pk=run.pk).update(state=state.model_dump(mode="json"))
    run.refresh_from_db()
    return run


def escalation(team: Team, *, reason: str = "approval_required", question: str = "",
               message: str = "I want a refund for order 1042", deadline_in: float | None = 3600,
               claimed_by=None, claimed_ago: float = 0, **fields) -> Escalation:
    run = waiting_run(team, message=message, reason=reason)
    now = timezone.now()
    return Escalation.objects.create(
        run=run, team=team, step_index=0, reason=reason,
        question=question or f"Approve this? ({reason})",
        proposed_tool=fields.pop("proposed_tool", "issue_refund"),
        proposed_args=fields.pop("proposed_args", {"order_id": "1042", "amount": 180}),
        priority=claims.priority_for(reason),
        deadline_at=now + timedelta(seconds=deadline_in) if deadline_in is not None else None,
        claimed_by=claimed_by, claimed_at=now - timedelta(seconds=claimed_ago)
        if claimed_by else None, **fields,
    )


def many_escalations(team: Team, count: int, reasons=("approval_required", "low_confidence",
                                                        "tool_failed", "step_limit")) -> None:
    """``count`` open escalations on one waiting run (bulk: the inbox at scale)."""
    run = waiting_run(team)
    now = timezone.now()
    Escalation.objects.bulk_create([
        Escalation(run=run, team=team, step_index=i, reason=reasons[i % len(reasons)],
                   question=f"Bulk question {i}", priority=claims.priority_for(
                       reasons[i % len(reasons)]),
                   deadline_at=now + timedelta(minutes=5 + i % 97) if i % 5 else None)
        for i in range(count)
    ], batch_size=1000)


def personas(demo: dict) -> dict:
    """The demo personas plus a team admin who is not a superuser, and a superuser of no team."""
    users = get_user_model()
    team_admin = users.objects.create_user("teamadmin", password=PASSWORD)
    Membership.objects.create(user=team_admin, team=demo["team"], role="admin")
    root = users.objects.create_superuser("root", password=PASSWORD)
    return {"operator": demo["operator"], "admin": team_admin, "outsider": demo["outsider"],
            "superuser": root, "anonymous": None}


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client
