"""Admin refuses settings that would silently do nothing, and every admin change to a policy,
rule, agent, team or API key lands in the audit log with what it was and what it became."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from runs.models import Agent, ApiKey, AuditEvent, Policy, Rule, Team

KNOWN_TOOLS = "issue_refund, lookup_order, search_policy"


@pytest.fixture
def admin(demo) -> Client:
    client = Client()
    client.force_login(demo["admin"])
    return client


def _form_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return "on" if value else ""
    return value


def inline(prefix: str, rows: list[dict[str, Any]], initial: int = 0) -> dict[str, Any]:
    """The POST data of an inline formset: its management form, then each row's fields."""
    data: dict[str, Any] = {f"{prefix}-TOTAL_FORMS": len(rows), f"{prefix}-INITIAL_FORMS": initial,
                            f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000}
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{k}": _form_value(v) for k, v in row.items()
                     if not (isinstance(v, bool) and not v)})
    return data


POLICY_FIELDS = ("name", "max_steps", "max_seconds", "max_tokens", "max_cost_usd",
                 "max_output_tokens", "confidence_threshold", "approval_amount_usd",
                 "approval_tools", "human_timeout_seconds", "human_timeout_action",
                 "fallback_answer", "on_bound", "loop_repeat_limit", "no_progress_limit",
                 "small_model", "large_model", "downgrade_after", "cache_ttl_seconds")
RULE_FIELDS = ("name", "priority", "enabled", "conditions", "action", "answer", "tool",
               "tool_args", "question")


def rule_row(rule: Rule | None = None, **changes: Any) -> dict[str, Any]:
    base = ({f: getattr(rule, f) for f in RULE_FIELDS} | {"id": rule.pk, "policy": rule.policy_id}
            if rule else {"name": "r", "priority": 100, "enabled": True, "action": "escalate",
                          "answer": "", "tool": "", "tool_args": {}, "question": "",
                          "conditions": [{"field": "message", "op": "contains", "value": "x"}]})
    return base | changes


def policy_post(policy: Policy, rules: list[dict[str, Any]] = (), existing: int = 0,
                **changes: Any) -> dict[str, Any]:
    data = {f: _form_value(changes.get(f, getattr(policy, f))) for f in POLICY_FIELDS}
    data["team"] = changes.get("team", policy.team_id)
    return data | inline("rules", list(rules), initial=existing)


def change_policy(client: Client, policy: Policy, **kwargs: Any):
    return client.post(f"/admin/runs/policy/{policy.pk}/change/", policy_post(policy, **kwargs))


def errors_of(call) -> str:
    with pytest.raises(ValidationError) as caught:
        call()
    return str(caught.value.message_dict)


# -- 1. approval tools ---------------------------------------------------------------------


def test_a_policy_refuses_approval_tools_its_agents_do_not_have(demo, admin):
    policy = Policy.objects.get()
    resp = change_policy(admin, policy, approval_tools=["issue-refund"])
    page = resp.content.decode()
    assert resp.status_code == 200
    assert "Unknown tool &#x27;issue-refund&#x27;" in page and KNOWN_TOOLS in page
    assert Policy.objects.get().approval_tools == []

    resp = change_policy(admin, policy, approval_tools=["issue_refund"])
    assert resp.status_code == 302
    assert Policy.objects.get().approval_tools == ["issue_refund"]


def test_a_policy_no_agent_uses_yet_is_checked_against_every_installed_agent(demo):
    fresh = Policy(name="fresh", team=demo["team"], approval_tools=["refund_everything"])
    message = errors_of(fresh.full_clean)
    assert "refund_everything" in message and KNOWN_TOOLS in message
    Policy(name="fresh", team=demo["team"], approval_tools=["issue_refund"]).full_clean()


# -- 2. rules ------------------------------------------------------------------------------


def make_rule(**fields: Any) -> Rule:
    base = {"name": "r", "action": "escalate",
            "conditions": [{"field": "message", "op": "contains", "value": "x"}]}
    return Rule(policy=Policy.objects.get(), **(base | fields))


def test_a_rule_with_an_invalid_regex_is_refused_naming_the_condition(demo):
    rule = make_rule(conditions=[{"field": "message", "op": "contains", "value": "x"},
                                 {"field": "message", "op": "regex", "value": "(unclosed"}])
    message = errors_of(rule.full_clean)
    assert "Condition 2" in message and "(unclosed" in message and "regular expression" in message
    fine = make_rule(conditions=[{"field": "message", "op": "regex", "value": r"order\s+\d+"}])
    fine.full_clean()


def test_a_rule_with_a_bad_regex_is_refused_in_the_policy_form(demo, admin):
    policy = Policy.objects.get()
    bad = rule_row(name="bad", conditions=[{"field": "message", "op": "regex", "value": "a("}])
    resp = change_policy(admin, policy, rules=[bad])
    assert resp.status_code == 200 and "Condition 1" in resp.content.decode()
    assert not Rule.objects.exists()


def test_a_rule_calling_an_unknown_tool_is_refused(demo):
    message = errors_of(make_rule(action="tool", tool="issue-refund").full_clean)
    assert "Unknown tool 'issue-refund'" in message and KNOWN_TOOLS in message


def test_a_rule_s_tool_arguments_must_fit_the_tool(demo):
    rule = make_rule(action="tool", tool="lookup_order", tool_args={"order": "1077"})
    message = errors_of(rule.full_clean)
    assert "tool_args" in message and "order_id" in message
    make_rule(action="tool", tool="lookup_order", tool_args={"order_id": "1077"}).full_clean()


@pytest.mark.parametrize(
    ("answer", "problem"),
    [("Hi {customer}", "{customer}: unknown placeholder"),
     ("Hi {0}", "{0}: positional"),
     ("Hi {message.__class__}", "{message.__class__}: attribute or index access"),
     ("Hi {message[0]}", "{message[0]}: attribute or index access")],
)
def test_an_answer_template_may_use_only_the_input_placeholders(demo, answer, problem):
    message = errors_of(make_rule(action="answer", answer=answer).full_clean)
    assert problem in message and "Allowed placeholders: {message}" in message


def test_an_answer_template_with_known_placeholders_and_escaped_braces_is_accepted(demo):
    make_rule(action="answer", answer="{{ticket}} You wrote: {message}").full_clean()


def test_the_rule_form_previews_the_rendered_answer(demo, admin):
    policy = Policy.objects.get()
    Rule.objects.create(policy=policy, name="faq", action="answer",
                        answer="Thanks! You wrote: {message}",
                        conditions=[{"field": "message", "op": "contains", "value": "order"}])
    page = admin.get(f"/admin/runs/policy/{policy.pk}/change/").content.decode()
    assert "Thanks! You wrote: Where is my order 1077?" in page


# -- 3. audit ------------------------------------------------------------------------------


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_a_policy_change_is_audited_with_only_the_changed_fields(demo, admin):
    policy = Policy.objects.get()
    resp = change_policy(admin, policy, max_steps=7, max_cost_usd="2.5")
    assert resp.status_code == 302
    [event] = events("policy.changed")
    assert (event.team, event.actor, event.target_type, event.target_id) == (
        demo["team"], demo["admin"], "policy", str(policy.pk))
    assert event.detail["before"] == {"max_steps": 20, "max_cost_usd": "1.0000"}
    assert event.detail["after"] == {"max_steps": 7, "max_cost_usd": "2.5000"}

    page = admin.get("/audit/").content.decode()
    assert "changed policy" in page
    changes = page[page.index('data-testid="audit-changes"'):]
    assert "<code>max_steps</code>" in changes and "20</span> → <span class=\"after\">7" in changes

    change_policy(admin, Policy.objects.get())  # saved with no change: nothing to record
    assert len(events("policy.changed")) == 1


def test_rules_edited_through_the_policy_are_audited(demo, admin):
    policy = Policy.objects.get()
    assert change_policy(admin, policy, rules=[rule_row(name="vip")]).status_code == 302
    rule = Rule.objects.get()
    [created] = events("rule.created")
    assert created.team == demo["team"] and created.target_id == str(rule.pk)
    assert created.detail["before"] == {} and created.detail["after"]["name"] == "vip"

    resp = change_policy(admin, policy, existing=1, rules=[rule_row(rule, priority=5)])
    assert resp.status_code == 302
    [changed] = events("rule.changed")
    assert changed.detail["before"] == {"priority": 100}
    assert changed.detail["after"] == {"priority": 5}

    resp = change_policy(admin, policy, existing=1, rules=[rule_row(rule, DELETE=True)])
    assert resp.status_code == 302 and not Rule.objects.exists()
    [deleted] = events("rule.deleted")
    assert deleted.target_id == str(rule.pk) and deleted.detail["before"]["name"] == "vip"
    assert deleted.detail["after"] == {}


def test_agent_team_and_api_key_changes_are_audited(demo, admin):
    agent = Agent.objects.get()
    post = {"team": agent.team_id, "slug": agent.slug, "name": agent.name,
            "input_schema": json.dumps(agent.input_schema), "policy": agent.policy_id,
            } | inline("knowledge_documents", [])
    assert admin.post(f"/admin/runs/agent/{agent.pk}/change/", post).status_code == 302
    [event] = events("agent.changed")
    assert event.detail == {"object": str(agent), "before": {"enabled": True},
                            "after": {"enabled": False}}

    team = demo["team"]
    members = [{"id": m.pk, "team": team.pk, "user": m.user_id, "role": m.role}
               for m in team.memberships.order_by("id")]
    secret = team.webhook_secret
    post = {"slug": team.slug, "name": team.name, "daily_budget_usd": "12.5",
            "max_running_runs": "", "callback_url": "", "webhook_secret": "s3cret",
            "auto_assign_active_minutes": team.auto_assign_active_minutes}
    post |= inline("memberships", members, initial=len(members))
    assert admin.post(f"/admin/runs/team/{team.pk}/change/", post).status_code == 302
    [event] = events("team.changed")
    assert event.detail["before"] == {"daily_budget_usd": None}
    assert event.detail["after"] == {"daily_budget_usd": "12.5000"}
    team.refresh_from_db()  # the secret is not a form field: only rotation changes it
    assert team.webhook_secret == secret and secret not in json.dumps(event.detail)

    key = ApiKey.objects.create(team=team, name="old", prefix="adk_x", hashed_key="h" * 64)
    resp = admin.post(f"/admin/runs/apikey/{key.pk}/delete/", {"post": "yes"})
    assert resp.status_code == 302 and not ApiKey.objects.exists()
    [event] = events("api_key.deleted")
    assert (event.team, event.target_id) == (team, str(key.pk))
    assert event.detail["before"]["name"] == "old"
    assert "hashed_key" not in event.detail["before"]


def test_a_new_team_is_audited_in_its_own_log(demo, admin):
    post = {"slug": "new", "name": "New team", "daily_budget_usd": "", "max_running_runs": "",
            "callback_url": "", "auto_assign_active_minutes": "15"} | inline("memberships", [])
    assert admin.post("/admin/runs/team/add/", post).status_code == 302
    [event] = events("team.created")
    assert event.team == Team.objects.get(slug="new")
    assert event.detail["after"]["name"] == "New team"


def test_a_policy_no_agent_uses_is_audited_in_its_own_teams_log(demo, admin):
    """The audit log is per team; a policy belongs to its team even before an agent uses it."""
    spare = Policy.objects.create(name="spare", team=demo["other_team"])
    assert change_policy(admin, spare, max_steps=3).status_code == 302
    assert Policy.objects.get(pk=spare.pk).max_steps == 3
    [event] = events("policy.changed")
    assert event.team == demo["other_team"]
