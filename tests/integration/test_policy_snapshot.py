"""One typed policy: the snapshot a run starts with is built from the Policy row by field
name, so a field added to the admin cannot be forgotten by a hand-written copier."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentdesk.runtime.options import HumanTimeoutAction, OnBound, RuleAction
from agentdesk.runtime.state import PolicySnapshot
from runs.models import Policy, Rule

NOT_LIMITS = {"id", "team", "name", "updated_at"}  # identity and bookkeeping, not behaviour


def test_every_policy_field_reaches_the_snapshot():
    fields = {f.name for f in Policy._meta.concrete_fields} - NOT_LIMITS
    assert fields <= PolicySnapshot.model_fields.keys(), fields - PolicySnapshot.model_fields.keys()


def test_option_choices_are_the_runtime_enums():
    assert {v for v, _ in Policy._meta.get_field("on_bound").choices} == set(OnBound)
    assert {v for v, _ in Policy._meta.get_field("human_timeout_action").choices} == \
        set(HumanTimeoutAction)
    assert {v for v, _ in Rule._meta.get_field("action").choices} == set(RuleAction)


@pytest.mark.django_db
def test_snapshot_reads_the_row_its_prices_and_enabled_rules(demo):
    policy = Policy.objects.get(agents__slug="support-refunds")
    policy.max_steps, policy.on_bound, policy.approval_tools = 7, "escalate", ["issue_refund"]
    policy.save()
    Rule.objects.create(policy=policy, name="on", action="escalate",
                        conditions=[{"field": "message", "op": "contains", "value": "x"}])
    Rule.objects.create(policy=policy, name="off", action="escalate", enabled=False,
                        conditions=[{"field": "message", "op": "contains", "value": "y"}])
    snap = policy.snapshot()
    assert snap.max_steps == 7 and snap.on_bound is OnBound.ESCALATE
    assert snap.approval_tools == ["issue_refund"]
    assert [r.name for r in snap.rules] == ["on"]
    assert set(snap.models) == {policy.small_model, policy.large_model}
    assert all(m.priced for m in snap.models.values())
    assert snap.max_cost_usd == Decimal(policy.max_cost_usd)
    # the JSON column round-trips to the same typed policy (Run.policy)
    assert PolicySnapshot.model_validate(snap.model_dump(mode="json")) == snap
