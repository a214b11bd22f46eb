"""GET /escalations and POST /escalations/{id}/resolve through services.decide: decisions
are recorded once and attributed to the key; the second one is a 409 naming the first."""

from __future__ import annotations

import pytest

from runs.models import AuditEvent, Escalation, Run
from tests.integration.helpers import open_escalation, refunds, wait_status

from .conftest import ApiClient, submit_body

pytestmark = pytest.mark.usefixtures("celery_worker")


def waiting_run(api) -> tuple[Run, Escalation]:
    run_id = api.post("/runs", submit_body("I want a refund for order 1042")).json()["id"]
    run = wait_status(Run.objects.get(pk=run_id), "waiting_human")
    return run, open_escalation(run)


def test_open_escalations_are_listed_and_approval_resumes_the_run(api, demo, data_dir):
    run, esc = waiting_run(api)
    listed = api.get("/escalations").json()
    assert [e["id"] for e in listed["items"]] == [esc.pk] and listed["next_cursor"] is None
    item = listed["items"][0]
    assert item["run_id"] == run.pk and item["reason"] == "approval_required"
    assert item["proposed_tool"] == "issue_refund"
    response = api.post(f"/escalations/{esc.pk}/resolve", {"action": "approve"})
    assert response.status_code == 200
    body = response.json()
    assert body["escalation"]["status"] == "decided"
    assert body["escalation"]["decision"] == "approve"
    assert body["run"]["status"] in ("queued", "running", "succeeded")
    wait_status(run, "succeeded")
    assert len(refunds(data_dir)) == 1
    assert api.get("/escalations").json()["items"] == []
    audit = AuditEvent.objects.get(action="escalation.decided", target_id=str(esc.pk))
    assert audit.api_key is not None and audit.actor is None


def test_second_decision_is_409_naming_who_decided(api, demo, make_key, data_dir):
    run, esc = waiting_run(api)
    assert api.post(f"/escalations/{esc.pk}/resolve", {"action": "reject"}).status_code == 200
    colleague = ApiClient(make_key(name="colleague"))
    late = colleague.post(f"/escalations/{esc.pk}/resolve", {"action": "approve"})
    assert late.status_code == 409
    error = late.json()["error"]
    assert error["code"] == "already_decided" and "api-key:test" in error["message"]
    wait_status(run, "succeeded", "failed")
    assert refunds(data_dir) == []


def test_invalid_decisions_are_4xx_and_change_nothing(api, demo, data_dir):
    run, esc = waiting_run(api)
    cases = [
        ({"action": "reply"}, 422),  # a reply needs a message
        ({"action": "launch"}, 422),
        ({"action": "reject", "args": {"x": 1}}, 422),  # arguments go with approve
        ({"action": "approve", "args": {"order_id": "x"}}, 422),  # not the tool's schema
        ({"action": "extend_budget", "budget": {"max_steps": "many"}}, 422),
    ]
    for body, status in cases:
        response = api.post(f"/escalations/{esc.pk}/resolve", body)
        assert response.status_code == status, (body, response.json())
        assert response.json()["error"]["code"]
    esc.refresh_from_db()
    assert esc.status == "open"
    assert api.post("/escalations/999999/resolve", {"action": "abort"}).status_code == 404
    aborted = api.post(f"/escalations/{esc.pk}/resolve", {"action": "abort"})
    assert aborted.status_code == 200
    assert (aborted.json()["run"]["status"], aborted.json()["run"]["reason"]) == (
        "aborted", "aborted_by_operator")


def test_reply_with_a_message_continues_the_run(api, demo, data_dir):
    run_id = api.post("/runs", submit_body("I want my money back")).json()["id"]
    run = wait_status(Run.objects.get(pk=run_id), "waiting_human")
    esc = open_escalation(run)
    response = api.post(f"/escalations/{esc.pk}/resolve",
                        {"action": "reply", "message": "order 1001"})
    assert response.status_code == 200
    wait_status(run, "succeeded", "waiting_human")
