"""The console over HTTP: forms, scoping (404 across teams), CSRF, double decisions."""

from __future__ import annotations

import pytest
from django.test import Client

from runs.models import Escalation, Policy, Run

from .helpers import open_escalation, refunds, submit, wait_status

pytestmark = pytest.mark.usefixtures("celery_worker", "data_dir")


def logged_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def test_pages_need_login(demo):
    for url in ("/inbox/", "/runs/", "/runs/new/", "/runs/1/", "/escalations/1/"):
        resp = Client().get(url)
        assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/")


def test_form_submission_lands_on_the_run_page(demo):
    client = logged_in(demo["operator"])
    agent = demo["team"].agents.get(slug="support-refunds")
    resp = client.post("/runs/new/", {"agent": agent.pk, "message": "Where is my order 1077?"})
    run = Run.objects.get()
    assert resp.status_code == 302 and resp["Location"] == f"/runs/{run.pk}/"
    wait_status(run, "succeeded")
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "succeeded" in page and "lookup_order" in page


@pytest.mark.parametrize(
    ("message", "error"),
    [("", "This field is required"), ("x" * 4001, "the limit is 4,000")],
)
def test_bad_form_input_is_refused_with_a_clear_error(demo, message, error):
    client = logged_in(demo["operator"])
    agent = demo["team"].agents.get()
    resp = client.post("/runs/new/", {"agent": agent.pk, "message": message})
    assert resp.status_code == 400 and error in resp.content.decode()
    assert not Run.objects.exists()


def test_agent_of_another_team_cannot_be_picked(demo):
    from runs.demo import seed_demo  # noqa: F401  (the demo agent exists for team demo only)

    client = logged_in(demo["outsider"])
    agent = demo["team"].agents.get()
    resp = client.post("/runs/new/", {"agent": agent.pk, "message": "refund order 1042"})
    assert resp.status_code == 400 and "Select a valid choice" in resp.content.decode()
    assert not Run.objects.exists()


def test_other_teams_runs_and_escalations_are_404(demo):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    client = logged_in(demo["outsider"])
    assert client.get(f"/runs/{run.pk}/").status_code == 404
    assert client.get(f"/escalations/{esc.pk}/").status_code == 404
    resp = client.post(f"/escalations/{esc.pk}/decide/", {"action": "approve"})
    assert resp.status_code == 404
    assert "1042" not in client.get("/inbox/").content.decode()
    esc.refresh_from_db()
    assert esc.status == "open"


def test_decide_needs_csrf(demo):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    client = logged_in(demo["operator"], enforce_csrf_checks=True)
    resp = client.post(f"/escalations/{esc.pk}/decide/", {"action": "approve"})
    assert resp.status_code == 403
    esc.refresh_from_db()
    assert esc.status == "open"


def test_double_submitted_decision_is_told_who_decided(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    first = logged_in(demo["operator"])
    second = logged_in(demo["admin"])
    ok = first.post(f"/escalations/{esc.pk}/decide/", {"action": "approve"},
                    headers={"HX-Request": "true"})
    assert ok.status_code == 200 and "approve" in ok.content.decode()
    again = second.post(f"/escalations/{esc.pk}/decide/", {"action": "reject"},
                        headers={"HX-Request": "true"})
    assert again.status_code == 409
    assert "Already decided by operator" in again.content.decode()
    wait_status(run, "succeeded")
    assert len(refunds(data_dir)) == 1


def test_decide_without_javascript_redirects_back(demo):
    run = submit(demo["team"], demo["operator"], "I want my money back")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    client = logged_in(demo["operator"])
    resp = client.post(f"/escalations/{esc.pk}/decide/", {"action": "reply", "message": ""})
    assert resp.status_code == 302
    page = client.get(resp["Location"]).content.decode()
    assert "A reply needs a message" in page
    assert Escalation.objects.get(pk=esc.pk).status == "open"


def test_healthz_reports_database_and_broker(db):
    resp = Client().get("/healthz")
    body = resp.json()
    assert resp.status_code == 200 and body["ok"] is True
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]


def test_admin_rejects_invalid_policy_and_keeps_history_read_only(demo):
    client = logged_in(demo["admin"])
    policy = Policy.objects.get()
    form = {
        "name": policy.name, "max_steps": 0, "max_seconds": 300, "max_tokens": 1000,
        "max_cost_usd": "1", "max_output_tokens": 512, "confidence_threshold": "1.5",
        "approval_amount_usd": "100", "approval_tools": "[]", "small_model": "gpt-unknown",
        "large_model": "sim-large",
    }
    resp = client.post(f"/admin/runs/policy/{policy.pk}/change/", form)
    page = resp.content.decode()
    assert resp.status_code == 200
    assert "Ensure this value is less than or equal to 1.0" in page
    assert "Ensure this value is greater than or equal to 1" in page
    assert "Unknown model" in page
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "succeeded")
    change = client.get(f"/admin/runs/run/{run.pk}/change/")
    assert change.status_code == 200 and 'name="_save"' not in change.content.decode()
    assert client.post(f"/admin/runs/run/{run.pk}/delete/", {"post": "yes"}).status_code == 403


def test_edit_and_approve_refuses_bad_arguments_with_the_field_error(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    client = logged_in(demo["operator"])
    url = f"/escalations/{esc.pk}/decide/"
    hx = {"HX-Request": "true"}
    bad_json = client.post(url, {"action": "edit_approve", "args": "{oops"}, headers=hx)
    assert bad_json.status_code == 400 and "Not valid JSON" in bad_json.content.decode()
    bad_amount = client.post(
        url, {"action": "edit_approve", "args": '{"order_id": "1042", "amount": -1}'},
        headers=hx,
    )
    page = bad_amount.content.decode()
    assert bad_amount.status_code == 422 and "amount" in page and "greater than 0" in page
    assert Escalation.objects.get(pk=esc.pk).status == "open"
    ok = client.post(
        url, {"action": "edit_approve",
              "args": '{"order_id": "1042", "amount": 20, "reason": "goodwill"}'}, headers=hx,
    )
    assert ok.status_code == 200
    wait_status(run, "succeeded")
    assert [r["amount"] for r in refunds(data_dir)] == [20.0]


def test_extend_budget_and_take_over_from_the_form(demo):
    Policy.objects.update(on_bound="escalate", max_steps=3)
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    client = logged_in(demo["operator"])
    page = client.get(f"/escalations/{esc.pk}/").content.decode()
    assert 'data-testid="extend-budget"' in page
    resp = client.post(f"/escalations/{esc.pk}/decide/",
                       {"action": "extend_budget", "max_steps": "30"})
    assert resp.status_code == 302
    wait_status(run, "succeeded")
    assert run.policy_snapshot["max_steps"] == 30

    other = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(other, "waiting_human")
    esc = open_escalation(other)
    client.post(f"/escalations/{esc.pk}/decide/",
                {"action": "take_over", "message": "Handled by phone."})
    wait_status(other, "succeeded")
    assert other.answer == "Handled by phone."
