"""Django admin for a team admin who is staff but not superuser (``admin_base.TeamScopedAdmin``
and ``permissions.TeamAdminBackend``): being a team admin is what lets them in; they create
and change their own team's rows only — another team's ids in a form are refused, actions
skip them — and an agent never gets another team's policy. (Which pages they open, and that
no other team's row shows on any of them, is ``test_access_matrix``.)"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from runs import api_keys
from runs.models import Agent, ApiKey, HttpTool, Membership, Policy

from .console_data import PASSWORD
from .test_admin_validation import inline, policy_post

HTTP_TOOL = {"name": "lookup", "description": "Looks it up.", "method": "GET",
             "url_template": "https://example.com/{id}", "header_env": "{}",
             "args_schema": '{"type": "object", "properties": {"id": {"type": "string"}}}',
             "timeout_s": "5", "read_only": "on"}


@pytest.fixture
def lead(demo):
    """A team admin of the demo team, nothing more (not staff until the membership)."""
    user = get_user_model().objects.create_user("lead", password=PASSWORD)
    assert not user.is_staff
    Membership.objects.create(user=user, team=demo["team"], role="admin")
    return get_user_model().objects.get(pk=user.pk)


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_team_admin_membership_opens_admin_and_only_while_it_lasts(demo, lead):
    assert lead.is_staff and not lead.is_superuser
    client = client_of(lead)
    index = client.get("/admin/").content.decode()
    assert "/admin/runs/policy/" in index and "/admin/auth/user/" not in index
    assert client.get("/admin/runs/policy/").status_code == 200

    Membership.objects.filter(user=lead).update(role="operator")  # demoted: still staff
    client = client_of(get_user_model().objects.get(pk=lead.pk))
    assert "/admin/runs/policy/" not in client.get("/admin/").content.decode()
    assert client.get("/admin/runs/policy/").status_code == 403


def test_a_team_admin_creates_rows_in_their_team_and_never_in_another(demo, lead):
    client = client_of(lead)
    other = demo["other_team"]
    refused = client.post("/admin/runs/httptool/add/", {"team": other.pk, **HTTP_TOOL})
    assert refused.status_code == 200  # the form again: that team is not a choice
    assert "team" in refused.context["adminform"].form.errors
    assert not HttpTool.objects.exists()
    assert client.post("/admin/runs/httptool/add/",
                       {"team": demo["team"].pk, **HTTP_TOOL}).status_code == 302
    assert HttpTool.objects.get().team == demo["team"]

    mine = Policy(team=demo["team"], name="mine")
    post = policy_post(mine) | inline("rules", [])
    assert client.post("/admin/runs/policy/add/", post | {"team": other.pk}).status_code == 200
    assert client.post("/admin/runs/policy/add/", post).status_code == 302
    assert Policy.objects.get(name="mine").team == demo["team"]


def test_an_agent_gets_a_policy_of_its_own_team_only(demo):
    other = demo["other_team"]
    theirs = Policy.objects.create(team=other, name="theirs")
    agent = Agent.objects.get(team=demo["team"])
    post = {"team": agent.team_id, "slug": agent.slug, "name": agent.name, "enabled": "on",
            "input_schema": "{}", "instructions": "", "policy": theirs.pk,
            "knowledge_documents-TOTAL_FORMS": 0, "knowledge_documents-INITIAL_FORMS": 0}
    page = client_of(demo["admin"]).post(f"/admin/runs/agent/{agent.pk}/change/", post)
    assert page.status_code == 200
    assert "a policy of another team" in str(page.context["adminform"].form.errors["policy"])
    agent.refresh_from_db()
    assert agent.policy.team == demo["team"]


def test_an_action_on_selected_rows_skips_another_teams(demo, lead):
    mine = api_keys.create_api_key(team=demo["team"], name="mine").key
    theirs = api_keys.create_api_key(team=demo["other_team"], name="theirs").key
    client_of(lead).post("/admin/runs/apikey/", {
        "action": "revoke", "_selected_action": [mine.pk, theirs.pk]})
    assert ApiKey.objects.get(pk=mine.pk).revoked_at is not None
    assert ApiKey.objects.get(pk=theirs.pk).revoked_at is None


def test_a_team_admin_makes_another_member_team_admin_who_then_gets_in(demo, lead):
    team = demo["team"]
    newcomer = get_user_model().objects.create_user("newcomer", password=PASSWORD)
    members = [{"id": m.pk, "team": team.pk, "user": m.user_id, "role": m.role}
               for m in team.memberships.order_by("id")]
    members.append({"team": team.pk, "user": newcomer.pk, "role": "admin"})
    post = {"slug": team.slug, "name": team.name, "daily_budget_usd": "",
            "max_running_runs": "", "callback_url": "", "auto_assign_active_minutes": "15",
            } | inline("memberships", members, initial=len(members) - 1)
    resp = client_of(lead).post(f"/admin/runs/team/{team.pk}/change/", post)
    assert resp.status_code == 302, resp.context["adminform"].form.errors
    newcomer.refresh_from_db()
    assert newcomer.is_staff
    assert client_of(newcomer).get("/admin/runs/agent/").status_code == 200
