"""POST /escalations/{id}/resolve with extend_budget after a team_budget bound: raising the
team's budget for the day is a team admin's decision, so an API key (which carries no role)
gets a clear 403 and nothing changes; a team admin does it from the console."""

from __future__ import annotations

from decimal import Decimal

import pytest

from runs.models import AuditEvent, Escalation, Policy, Run, TeamDailySpend
from tests.integration.helpers import open_escalation, wait_status

from .conftest import submit_body

pytestmark = pytest.mark.usefixtures("celery_worker", "data_dir")


def paused_run(api, demo, message: str = "Where is my order 1077?", **policy) -> Escalation:
    row = Policy.objects.get()
    for name, value in {"on_bound": "escalate", **policy}.items():
        setattr(row, name, value)
    row.save()
    run_id = api.post("/runs", submit_body(message)).json()["id"]
    return open_escalation(wait_status(Run.objects.get(pk=run_id), "waiting_human"))


@pytest.mark.parametrize("budget", [{"team_budget_usd": 5}, {"team_budget_usd": "0.5"}, None])
def test_an_api_key_may_not_raise_the_teams_budget(api, demo, budget):
    demo["team"].daily_budget_usd = Decimal("0")
    demo["team"].save()
    esc = paused_run(api, demo)
    assert esc.reason == "team_budget"
    body = {"action": "extend_budget", **({"budget": budget} if budget else {})}
    response = api.post(f"/escalations/{esc.pk}/resolve", body)
    assert response.status_code == 403, response.json()
    error = response.json()["error"]
    assert error["code"] == "forbidden" and "team admin" in error["message"]
    assert Escalation.objects.get(pk=esc.pk).status == "open"
    assert not TeamDailySpend.objects.filter(extra_usd__gt=0).exists()
    assert not AuditEvent.objects.filter(action="team.budget_extended").exists()


def test_team_budget_usd_is_refused_on_other_bounds(api, demo):
    esc = paused_run(api, demo, max_steps=3)
    assert esc.reason == "step_limit"
    response = api.post(f"/escalations/{esc.pk}/resolve",
                        {"action": "extend_budget",
                         "budget": {"max_steps": 20, "team_budget_usd": 5}})
    assert response.status_code == 422
    assert "team_budget_usd" in response.json()["error"]["fields"]
    assert Escalation.objects.get(pk=esc.pk).status == "open"
