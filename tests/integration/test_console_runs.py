"""Runs list filters and pages, the run page (policy snapshot, cancel), the audit log."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from runs import claims, services
from runs.models import AuditEvent, Escalation, Run

from .console_data import client_for, escalation, waiting_run
from .console_data import no_resume as no_resume  # a fixture

pytestmark = pytest.mark.usefixtures("no_resume")

HX = {"HX-Request": "true"}


def run_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'id="run-(\d+)" data-testid="run-row"', html)]


def test_runs_list_filters_by_status_reason_agent_team_and_dates(demo):
    team = demo["team"]
    waiting = waiting_run(team, reason="approval_required")
    done = waiting_run(team)
    Run.objects.filter(pk=done.pk).update(status="succeeded", reason="")
    old = waiting_run(team)
    Run.objects.filter(pk=old.pk).update(status="failed", reason="tool_failed",
                                         created_at=timezone.now() - timedelta(days=10))
    escalation(team)  # a fourth run, escalated
    client = client_for(demo["operator"])
    assert len(run_ids(client.get("/runs/").content.decode())) == 4
    assert run_ids(client.get("/runs/?status=succeeded").content.decode()) == [done.pk]
    assert run_ids(client.get("/runs/?reason=tool_failed").content.decode()) == [old.pk]
    assert len(run_ids(client.get("/runs/?reason=escalated").content.decode())) == 1
    assert waiting.pk in run_ids(client.get("/runs/?status=waiting_human").content.decode())
    assert len(run_ids(client.get("/runs/?agent=support-refunds&team=demo").content
                       .decode())) == 4
    since = (timezone.localdate() - timedelta(days=3)).isoformat()
    recent = run_ids(client.get(f"/runs/?since={since}").content.decode())
    assert old.pk not in recent and len(recent) == 3
    until = (timezone.localdate() - timedelta(days=5)).isoformat()
    assert run_ids(client.get(f"/runs/?until={until}").content.decode()) == [old.pk]
    bad = client.get(f"/runs/?since={since}&until={until}")
    assert bad.status_code == 200 and "before the start date" in bad.content.decode()
    assert client.get("/runs/?status=nope&since=garbage").status_code == 200
    partial = client.get("/runs/?status=succeeded", headers=HX).content.decode()
    assert "<html" not in partial and run_ids(partial) == [done.pk]
    assert run_ids(client_for(demo["outsider"]).get("/runs/").content.decode()) == []


def test_runs_list_is_paginated(demo):
    for _ in range(55):
        waiting_run(demo["team"])
    client = client_for(demo["operator"])
    first = client.get("/runs/").content.decode()
    assert len(run_ids(first)) == 50 and "Page 1 of 2" in first
    assert len(run_ids(client.get("/runs/?page=2").content.decode())) == 5


def test_run_page_shows_policy_snapshot_usage_and_cancel(demo):
    run = waiting_run(demo["team"])
    html = client_for(demo["operator"]).get(f"/runs/{run.pk}/").content.decode()
    assert 'data-testid="policy-snapshot"' in html and "Max steps" in html
    assert str(run.policy_snapshot["max_tokens"]) in html
    assert 'data-testid="cancel-run"' in html
    assert "Active seconds" in html and "bar-fill" in html  # usage against limits


def test_cancel_aborts_the_run_closes_escalations_and_is_audited(demo):
    esc = escalation(demo["team"])
    client = client_for(demo["operator"])
    resp = client.post(f"/runs/{esc.run_id}/cancel/", headers=HX)
    assert resp.status_code == 200 and "nothing to cancel" in resp.content.decode()
    run = Run.objects.get(pk=esc.run_id)
    assert (run.status, run.reason) == ("aborted", "aborted_by_operator")
    assert Escalation.objects.get(pk=esc.pk).status == "cancelled"
    assert run.steps.filter(kind="human", name="abort").count() == 1
    event = AuditEvent.objects.get(action="run.cancelled")
    assert event.actor == demo["operator"] and event.target_id == str(run.pk)
    again = client.post(f"/runs/{esc.run_id}/cancel/", headers=HX)
    assert again.status_code == 409 and "can no longer be cancelled" in again.content.decode()
    plain = client.post(f"/runs/{esc.run_id}/cancel/")
    assert plain.status_code == 302 and plain["Location"] == f"/runs/{run.pk}/"


def test_decision_shows_time_to_decision_and_lands_in_the_audit_log(demo):
    esc = escalation(demo["team"])
    Escalation.objects.filter(pk=esc.pk).update(
        created_at=timezone.now() - timedelta(minutes=3, seconds=5))
    claims.claim(escalation_id=esc.pk, user=demo["operator"])
    services.decide(escalation_id=esc.pk, user=demo["operator"], decision="approve",
                    args={"order_id": "1042", "amount": 20, "reason": "goodwill"})
    client = client_for(demo["operator"])
    page = client.get(f"/escalations/{esc.pk}/").content.decode()
    assert re.search(r'data-testid="time-to-decision">Time to decision: <b>3m 0[5-9]s', page)
    assert "after 3m" in client.get(f"/runs/{esc.run_id}/").content.decode()
    decided = AuditEvent.objects.get(action="escalation.decided")
    assert decided.detail["edited"] is True and decided.detail["decision"] == "approve"
    assert 185 <= decided.detail["seconds_to_decision"] < 200
    audit = client.get("/audit/").content.decode()
    assert audit.count('data-testid="audit-row"') == 2
    assert "edited arguments" in audit and "claimed" in audit
    only = client.get("/audit/?action=escalation.claimed").content.decode()
    assert only.count('data-testid="audit-row"') == 1
    assert 'data-testid="audit-row"' not in client_for(demo["outsider"]).get("/audit/")\
        .content.decode()


def test_audit_log_is_paginated(demo):
    esc = escalation(demo["team"])
    AuditEvent.objects.bulk_create([
        AuditEvent(team=demo["team"], actor=demo["operator"], action="escalation.claimed",
                   target_type="escalation", target_id=str(esc.pk)) for _ in range(60)
    ])
    client = client_for(demo["operator"])
    first = client.get("/audit/").content.decode()
    assert first.count('data-testid="audit-row"') == 50 and "Page 1 of 2" in first
    assert client.get("/audit/?page=2").content.decode().count('data-testid="audit-row"') == 10
