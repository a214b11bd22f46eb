"""Roles in the console and the writers (``runs.permissions``): a viewer's console is
read-only — no button it would be refused, every action a 403 that says why, and the same
refusal from each writer whoever calls it; viewers are never assigned work. (Who reaches
which URL at all is ``test_access_matrix``.)"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from runs import assignment, bulk, claims, permissions, reviews, services
from runs.errors import Forbidden
from runs.models import Agent, Membership, Policy, Team

from .access_matrix_data import review_item
from .console_data import PASSWORD, client_for, escalation
from .console_data import no_resume as no_resume  # a fixture

pytestmark = pytest.mark.usefixtures("no_resume")

BUTTONS = ('data-testid="action-reject"', 'data-testid="claim"', 'data-testid="assign"',
           'data-testid="bulk-bar"', 'data-testid="cancel-run"', 'data-testid="review-approve"',
           ">New task<")


def member(team: Team, name: str, role: str):
    user = get_user_model().objects.create_user(name, password=PASSWORD)
    Membership.objects.create(user=user, team=team, role=role)
    return user


def console_html(user, esc, item) -> str:
    client = client_for(user)
    return "".join(client.get(url).content.decode() for url in (
        f"/escalations/{esc.pk}/", "/inbox/", f"/runs/{esc.run_id}/", "/review/",
        f"/escalations/{esc.pk}/claim/", f"/escalations/{esc.pk}/assign/"))


def test_a_viewer_sees_the_console_without_a_button_to_act(demo):
    viewer = member(demo["team"], "watcher", "viewer")
    esc, item = escalation(demo["team"], question="Refund 180?"), review_item(demo["team"], "x")
    html = console_html(viewer, esc, item)
    assert "Refund 180?" in html and f"Run #{esc.run_id}" in html
    assert [b for b in BUTTONS if b in html] == []
    assert 'data-testid="read-only"' in html
    operator_html = console_html(demo["operator"], esc, item)
    assert [b for b in BUTTONS if b not in operator_html] == []


def test_every_action_of_a_viewer_is_refused_with_a_403_that_says_why(demo):
    viewer = member(demo["team"], "watcher", "viewer")
    esc, item = escalation(demo["team"]), review_item(demo["team"], "x")
    client = client_for(viewer)
    for url, data in ((f"/escalations/{esc.pk}/decide/", {"action": "reject"}),
                      (f"/escalations/{esc.pk}/claim/", {}),
                      (f"/escalations/{esc.pk}/release/", {}),
                      (f"/escalations/{esc.pk}/assign/", {"assign_me": "1"}),
                      ("/inbox/bulk/", {"action": "approve", "ids": [esc.pk]}),
                      (f"/runs/{esc.run_id}/cancel/", {}),
                      (f"/review/{item.pk}/", {"verdict": "approve"}),
                      ("/runs/new/", {"agent": "1", "message": "hi"})):
        resp = client.post(url, data)
        page = resp.content.decode()
        assert resp.status_code == 403, url
        assert "does not allow" in page and "operator" in page, url
    assert "Your role in Demo team (viewer) does not allow deciding escalations" in \
        client.post(f"/escalations/{esc.pk}/decide/", {"action": "reject"}).content.decode()
    esc.refresh_from_db()
    item.refresh_from_db()
    assert (esc.status, esc.claimed_by, esc.assigned_to, esc.run.status) == (
        "open", None, None, "waiting_human")
    assert item.status == "pending"


def test_each_writer_refuses_a_viewer_whoever_calls_it(demo):
    viewer = member(demo["team"], "watcher", "viewer")
    esc, item = escalation(demo["team"]), review_item(demo["team"], "x")
    calls = {
        "decide": lambda: services.decide(escalation_id=esc.pk, user=viewer, decision="reject"),
        "claim": lambda: claims.claim(escalation_id=esc.pk, user=viewer),
        "release": lambda: claims.release(escalation_id=esc.pk, user=viewer),
        "assign": lambda: assignment.assign(escalation_id=esc.pk, assignee_id=None,
                                            user=viewer),
        "cancel": lambda: services.cancel_run(run_id=esc.run_id, user=viewer),
        "review": lambda: reviews.review(item_id=item.pk, user=viewer, verdict="approve"),
    }
    for name, call in calls.items():
        with pytest.raises(Forbidden, match="viewer"):
            call()
        esc.refresh_from_db()
        assert (esc.status, esc.claimed_by_id, esc.run.status) == (
            "open", None, "waiting_human"), name


def test_a_user_who_operates_one_team_and_views_another_acts_only_on_the_first(demo):
    other = demo["other_team"]
    Agent.objects.create(team=other, slug="support-refunds", name="Refunds",
                         policy=Policy.objects.create(team=other, name="other's"))
    both = member(other, "both", "operator")
    Membership.objects.create(user=both, team=demo["team"], role="viewer")
    watched, operated = escalation(demo["team"]), escalation(demo["other_team"])
    result = bulk.apply(user=both, action="reject", escalation_ids=[watched.pk, operated.pk])
    assert {i.escalation_id: i.kind for i in result.items} == {
        watched.pk: bulk.NOT_PERMITTED, operated.pk: "done"}
    watched.refresh_from_db()
    assert watched.status == "open"
    assert client_for(both).post(f"/escalations/{watched.pk}/decide/",
                                 {"action": "reject"}).status_code == 403


def test_viewers_are_never_assigned(demo):
    viewer = member(demo["team"], "watcher", "viewer")
    esc = escalation(demo["team"])
    assert viewer not in assignment.members(demo["team"].pk)
    assert viewer not in bulk.assignable_for(demo["operator"])
    assert demo["operator"] in bulk.assignable_for(demo["operator"])
    with pytest.raises(Exception, match="not a member"):
        assignment.assign(escalation_id=esc.pk, assignee_id=viewer.pk, user=demo["operator"])
    Membership.objects.filter(user=viewer).update(last_active_at=esc.created_at)
    assert viewer.pk not in assignment.active_members(demo["team"].pk, 60, esc.created_at)


def test_a_superuser_may_everything_a_team_role_only_its_own(demo):
    root = get_user_model().objects.create_superuser("root", password=PASSWORD)
    other = demo["other_team"]
    for action in permissions.Action:
        assert permissions.can(root, action, other)
        assert permissions.can(demo["operator"], action, demo["team"]) == (
            action in permissions.OPERATE)
        assert not permissions.can(demo["operator"], action, other)
    assert not permissions.can(None, permissions.Action.VIEW, demo["team"])
    viewer = member(demo["team"], "watcher", "viewer")
    assert list(permissions.teams_where(viewer, permissions.Action.VIEW)) == [demo["team"]]
    assert not permissions.teams_where(viewer, permissions.Action.DECIDE).exists()
