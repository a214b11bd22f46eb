"""Decisions are checked on the server, whatever the client sends (issue 11): edited
arguments must be a JSON object that fits the tool — ``null`` included; approve needs
something proposed; an extension must lift the limit the run ran into. A refused decision
changes nothing. And a success after an operator overrode the agent is not the agent's."""

from __future__ import annotations

import pytest

from runs import errors, services, stats
from runs.api_keys import create_api_key
from runs.models import Escalation, Policy, Run

from .console_data import client_for, escalation, no_resume  # noqa: F401
from .helpers import open_escalation, refunds, submit, wait_status

HX = {"HX-Request": "true"}


def still_open(esc: Escalation) -> bool:
    esc.refresh_from_db()
    return esc.status == Escalation.Status.OPEN and esc.run.status == "waiting_human"


@pytest.mark.usefixtures("no_resume")
def test_edit_and_approve_with_null_arguments_is_refused_everywhere(demo):
    esc = escalation(demo["team"])
    with pytest.raises(errors.InputInvalid) as err:
        services.decide(escalation_id=esc.pk, user=demo["operator"], decision="approve",
                        args=None)
    assert err.value.fields == {"args": ["Not an object."]}
    page = client_for(demo["operator"]).post(
        f"/escalations/{esc.pk}/decide/", {"action": "edit_approve", "args": "null"},
        headers=HX)
    assert page.status_code == 422 and "JSON object" in page.content.decode()
    key = create_api_key(team=demo["team"], name="ci", scopes=["read", "resolve"]).raw
    api = client_for(None).post(
        f"/api/v1/escalations/{esc.pk}/resolve", {"action": "approve", "args": None},
        content_type="application/json", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 422 and api.json()["error"]["fields"] == {"args": ["Not an object."]}
    assert still_open(esc)


@pytest.mark.usefixtures("no_resume")
def test_the_api_without_args_still_approves_as_proposed(demo):
    esc = escalation(demo["team"])
    key = create_api_key(team=demo["team"], name="ci", scopes=["read", "resolve"]).raw
    api = client_for(None).post(
        f"/api/v1/escalations/{esc.pk}/resolve", {"action": "approve"},
        content_type="application/json", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 200 and api.json()["escalation"]["decision"] == "approve"


@pytest.mark.usefixtures("no_resume")
@pytest.mark.parametrize("reason", ["tool_failed", "low_confidence", "step_limit"])
def test_approve_is_refused_when_nothing_is_proposed(demo, reason):
    esc = escalation(demo["team"], reason=reason, proposed_tool="", proposed_args={})
    with pytest.raises(errors.Invalid, match="nothing to approve") as err:
        services.decide(escalation_id=esc.pk, user=demo["operator"], decision="approve")
    assert "action" in err.value.fields
    assert still_open(esc)
    page = client_for(demo["operator"]).get(f"/escalations/{esc.pk}/").content.decode()
    assert 'value="approve"' not in page  # the console does not offer it either


@pytest.mark.usefixtures("celery_worker", "data_dir")
def test_extending_with_the_limit_already_used_is_refused_naming_the_field(demo):
    Policy.objects.filter(agents__team=demo["team"]).update(on_bound="escalate", max_steps=3)
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    with pytest.raises(errors.Invalid) as err:
        services.decide(escalation_id=esc.pk, user=demo["operator"], decision="extend_budget",
                        budget={"max_steps": 3, "max_tokens": 90_000})
    assert list(err.value.fields) == ["max_steps"] and "max_steps" in err.value.message
    page = client_for(demo["operator"]).post(
        f"/escalations/{esc.pk}/decide/",
        {"action": "extend_budget", "max_steps": "3", "max_tokens": "90000"}, headers=HX)
    assert page.status_code == 422 and "max_steps" in page.content.decode()
    assert still_open(esc)
    services.decide(escalation_id=esc.pk, user=demo["operator"], decision="extend_budget",
                    budget={"max_steps": 20})
    wait_status(run, "succeeded")


@pytest.mark.usefixtures("celery_worker")
def test_a_success_after_a_rejection_is_marked_overridden_and_counted_apart(demo, data_dir):
    rejected = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    approved = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    for run, decision in ((rejected, "reject"), (approved, "approve")):
        wait_status(run, "waiting_human")
        services.decide(escalation_id=open_escalation(run).pk, user=demo["operator"],
                        decision=decision, message="No refunds on sale items.")
    wait_status(rejected, "succeeded")
    wait_status(approved, "succeeded")
    assert (rejected.overridden, approved.overridden) == (True, False)
    assert len(refunds(data_dir)) == 1
    outcomes = dict(stats.runs_by_outcome(demo["operator"], stats.Window.last(1)))
    assert outcomes == {"succeeded": 1, stats.OVERRIDDEN: 1}
    assert Run.objects.get(pk=rejected.pk).overridden
