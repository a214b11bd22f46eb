"""Assignment (issue 17): an escalation assigned to a team member shows under their "Mine"
and with their name to everyone else; reassigning and unassigning are conditional updates,
audited; round-robin hands new escalations to members active lately; the API assigns too."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from runs import assignment
from runs.api_keys import create_api_key
from runs.errors import Conflict, Invalid, NotOpen
from runs.models import AuditEvent, Escalation, Membership
from tests.api.conftest import (  # noqa: F401  (autouse fixtures)
    ApiClient,
    fast_password_hashing,
    hold_runs_unless_worker,
)
from tests.conftest import wait_for

from .console_data import client_for, escalation
from .helpers import open_escalation, submit, wait_status

HX = {"HX-Request": "true"}


def audit_of(esc: Escalation) -> list[tuple]:
    return list(AuditEvent.objects.filter(target_type="escalation", target_id=str(esc.pk))
                .order_by("pk").values_list("action", "actor__username", "detail"))


def test_assigned_escalations_are_mine_for_the_assignee_and_named_for_the_others(demo):
    esc = escalation(demo["team"], question="Refund order 1042?")
    other = escalation(demo["team"], question="Refund order 1043?")
    operator, admin = demo["operator"], demo["admin"]
    response = client_for(operator).post(f"/escalations/{esc.pk}/assign/",
                                         {"assignee": admin.pk, "expected": ""}, headers=HX)
    assert response.status_code == 200
    box = response.content.decode()
    assert 'data-testid="assigned-to">Assigned to <b>admin</b>' in box
    assert "Assigned to admin." in box  # what was done

    mine = client_for(admin).get("/inbox/?claimed=mine").content.decode()
    assert "Refund order 1042?" in mine and "Refund order 1043?" not in mine
    assert "Assigned to <b>you</b>" in mine
    everyone = client_for(operator).get("/inbox/").content.decode()
    assert "Assigned to <b>admin</b>" in everyone
    assert "Refund order 1042?" not in client_for(operator).get(
        "/inbox/?claimed=mine").content.decode()
    page = client_for(operator).get(f"/escalations/{esc.pk}/").content.decode()
    assert 'data-testid="assign-box"' in page and "Assigned to <b>admin</b>" in page
    assert other.assigned_to is None
    assert audit_of(esc) == [("escalation.assigned", "operator",
                              {"run_id": esc.run_id, "assignee": "admin"})]


def test_reassign_and_unassign_are_audited_with_who_held_it(demo):
    esc = escalation(demo["team"])
    operator, admin = demo["operator"], demo["admin"]
    assert assignment.assign(escalation_id=esc.pk, assignee_id=operator.pk,
                             user=operator).action == "assigned"
    assert assignment.assign(escalation_id=esc.pk, assignee_id=operator.pk,
                             user=operator).action == "unchanged"
    outcome = assignment.assign(escalation_id=esc.pk, assignee_id=admin.pk, user=operator,
                                expected=operator.pk)
    assert (outcome.action, outcome.previous) == ("reassigned", "operator")
    client = client_for(admin)
    client.post(f"/escalations/{esc.pk}/assign/", {"assignee": "", "expected": admin.pk})
    esc.refresh_from_db()
    assert esc.assigned_to is None and esc.assigned_at is None
    assert [(a, who, d.get("assignee"), d.get("previous")) for a, who, d in audit_of(esc)] == [
        ("escalation.assigned", "operator", "operator", None),
        ("escalation.reassigned", "operator", "admin", "operator"),
        ("escalation.unassigned", "admin", None, "admin"),
    ]
    # "Assign to me", as a plain form post (no JavaScript): a redirect and a message
    response = client.post(f"/escalations/{esc.pk}/assign/", {"assign_me": "1", "expected": ""},
                           follow=True)
    assert response.redirect_chain[-1][0] == f"/escalations/{esc.pk}/"
    assert "Assigned to admin." in response.content.decode()
    assert Escalation.objects.get(pk=esc.pk).assigned_to == admin


def test_a_stale_page_does_not_overwrite_a_newer_assignment(demo):
    esc = escalation(demo["team"])
    operator, admin = demo["operator"], demo["admin"]
    assignment.assign(escalation_id=esc.pk, assignee_id=admin.pk, user=admin)
    # the operator's page still shows it unassigned
    response = client_for(operator).post(f"/escalations/{esc.pk}/assign/",
                                         {"assignee": operator.pk, "expected": ""}, headers=HX)
    assert response.status_code == 409
    assert "it is now assigned to admin" in response.content.decode()
    assert Escalation.objects.get(pk=esc.pk).assigned_to == admin
    with pytest.raises(Conflict, match="now assigned to admin"):
        assignment.assign(escalation_id=esc.pk, assignee_id=None, user=operator, expected=None)


@pytest.mark.parametrize("attempt", range(3))
def test_two_reassignments_at_once_one_wins_the_other_is_told(demo, attempt):
    esc = escalation(demo["team"])
    operator, admin = demo["operator"], demo["admin"]
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def run(i, assignee):
        try:
            barrier.wait()
            results[i] = assignment.assign(escalation_id=esc.pk, assignee_id=assignee.pk,
                                           user=assignee, expected=None)
        except Exception as exc:  # the loser's error is the result under test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, u)) for i, u in
               enumerate((operator, admin))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], Conflict)
    winner = won[0].escalation.assigned_to.get_username()
    assert f"now assigned to {winner}" in lost[0].message
    assert [a for a, _, _ in audit_of(esc)] == ["escalation.assigned"]


def test_only_open_escalations_and_only_team_members(demo):
    esc = escalation(demo["team"])
    with pytest.raises(Invalid, match="not a member"):
        assignment.assign(escalation_id=esc.pk, assignee_id=demo["outsider"].pk,
                          user=demo["operator"])
    response = client_for(demo["operator"]).post(
        f"/escalations/{esc.pk}/assign/", {"assignee": demo["outsider"].pk, "expected": ""},
        headers=HX)
    assert response.status_code == 422
    # another team's operator does not even see it
    assert client_for(demo["outsider"]).post(
        f"/escalations/{esc.pk}/assign/", {"assign_me": "1"}).status_code == 404
    Escalation.objects.filter(pk=esc.pk).update(status="decided")
    with pytest.raises(NotOpen):
        assignment.assign(escalation_id=esc.pk, assignee_id=demo["operator"].pk,
                          user=demo["operator"])
    assert not AuditEvent.objects.filter(action__startswith="escalation.").exists()


def test_using_the_console_marks_a_member_active_at_most_once_a_minute(demo):
    membership = Membership.objects.get(user=demo["operator"], team=demo["team"])
    assert membership.last_active_at is None
    client_for(demo["operator"]).get("/inbox/")
    membership.refresh_from_db()
    first = membership.last_active_at
    assert first is not None and timezone.now() - first < timedelta(seconds=10)
    client_for(demo["operator"]).get("/inbox/")
    membership.refresh_from_db()
    assert membership.last_active_at == first


@pytest.mark.usefixtures("celery_worker", "data_dir")
def test_round_robin_among_members_active_lately(demo):
    team = demo["team"]
    team.auto_assign, team.auto_assign_active_minutes = True, 10
    team.save()
    users = get_user_model()
    away = users.objects.create_user("away", password="x")
    now = timezone.now()
    Membership.objects.create(user=away, team=team, last_active_at=now - timedelta(hours=2))
    Membership.objects.filter(user__in=[demo["operator"], demo["admin"]]).update(
        last_active_at=now)
    runs = [submit(team, demo["operator"], "I want a refund for order 1042") for _ in range(3)]
    assignees = []
    for run in runs:
        wait_status(run, "waiting_human")
        assignees.append(open_escalation(run).assigned_to.get_username())
    # whatever order they opened in, turns go by user id: first, second, first again
    first, second = sorted([demo["operator"], demo["admin"]], key=lambda u: u.pk)
    assert sorted(assignees) == sorted([first.username, second.username, first.username])
    esc = open_escalation(runs[0])
    assert audit_of(esc)[0][0] == "escalation.assigned"
    assert audit_of(esc)[0][2]["auto"] is True and audit_of(esc)[0][1] is None

    # nobody active: new escalations stay unassigned
    Membership.objects.filter(team=team).update(last_active_at=now - timedelta(hours=1))
    quiet = submit(team, demo["operator"], "I want a refund for order 1042")
    wait_status(quiet, "waiting_human")
    assert open_escalation(quiet).assigned_to is None


def test_auto_assign_is_off_unless_the_team_asks(demo):
    Membership.objects.filter(team=demo["team"]).update(last_active_at=timezone.now())
    esc = escalation(demo["team"])
    assert assignment.auto_assign(esc) is None
    demo["team"].auto_assign = True
    demo["team"].save()
    first = assignment.auto_assign(esc)
    second_esc = escalation(demo["team"])
    second = assignment.auto_assign(second_esc)
    assert {first, second} == {demo["operator"].pk, demo["admin"].pk}
    assert assignment.auto_assign(esc) is None  # assigned already: left alone


# -- the API ---------------------------------------------------------------------------------------


def api_for(team) -> ApiClient:
    return ApiClient(create_api_key(team=team, name="triage", scopes=["read", "resolve"]).raw)


def test_the_api_assigns_reassigns_and_unassigns_by_username(demo):
    api = api_for(demo["team"])
    esc = escalation(demo["team"])
    response = api.post(f"/escalations/{esc.pk}/assign", {"user": "operator"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["assigned_to"] == "operator" and body["assigned_at"]
    assert api.get("/escalations").json()["items"][0]["assigned_to"] == "operator"
    assert api.post(f"/escalations/{esc.pk}/assign", {"user": "admin"}).json()[
        "assigned_to"] == "admin"
    refused = api.post(f"/escalations/{esc.pk}/assign", {"user": "outsider"})
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"] == {"user": ["Not a member of this team."]}
    assert api.post(f"/escalations/{esc.pk}/assign", {"user": None}).json()[
        "assigned_to"] is None
    assert api.post(f"/escalations/{esc.pk}/assign", {}).status_code == 422  # user required
    events = AuditEvent.objects.filter(target_id=str(esc.pk)).order_by("pk")
    assert [e.action for e in events] == ["escalation.assigned", "escalation.reassigned",
                                          "escalation.unassigned"]
    assert all(e.api_key_id and e.actor_id is None for e in events)
    Escalation.objects.filter(pk=esc.pk).update(status="decided")
    closed = api.post(f"/escalations/{esc.pk}/assign", {"user": "operator"})
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "not_open"


def test_the_api_cannot_assign_another_teams_escalation(demo):
    mine = escalation(demo["team"])
    response = api_for(demo["other_team"]).post(f"/escalations/{mine.pk}/assign",
                                                 {"user": "outsider"})
    assert response.status_code == 404


def test_an_assignment_change_reaches_open_inboxes(demo, monkeypatch):
    sent = []
    monkeypatch.setattr("runs.events.publish", lambda *events: sent.extend(events))
    esc = escalation(demo["team"])
    assignment.assign(escalation_id=esc.pk, assignee_id=demo["admin"].pk, user=demo["admin"])
    wait_for(lambda: sent, timeout=5)
    kinds = {(e.group, e.kind) for e in sent}
    assert (f"team.{demo['team'].pk}", "escalation.assigned") in kinds
    assert (f"run.{esc.run_id}", "escalation.assigned") in kinds
