"""Migration 0019 gives every existing policy a team: its agents' team; a policy agents of
several teams shared is copied, rules included, for each further team, whose agents then use
the copy; a policy no agent uses goes to the first team."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from runs.models import Agent, Policy, Rule

BEFORE = [("runs", "0018_notifications")]


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor


@pytest.mark.django_db(transaction=True)
def test_policies_get_their_agents_team_and_a_shared_one_is_copied_per_team():
    old = migrate(BEFORE).loader.project_state(BEFORE).apps
    team, policy, rule, agent = (old.get_model("runs", name)
                                 for name in ("Team", "Policy", "Rule", "Agent"))
    a = team.objects.create(slug="a", name="A")
    b = team.objects.create(slug="b", name="B")
    c = team.objects.create(slug="c", name="C")
    shared = policy.objects.create(name="shared", max_steps=7)
    rule.objects.create(policy=shared, name="vip", action="escalate",
                        conditions=[{"field": "message", "op": "contains", "value": "vip"}])
    own = policy.objects.create(name="own")
    unused = policy.objects.create(name="unused")
    agent.objects.create(team=a, slug="x", name="x", policy=shared)
    agent.objects.create(team=b, slug="y", name="y", policy=shared)
    agent.objects.create(team=b, slug="z", name="z", policy=shared)
    agent.objects.create(team=c, slug="w", name="w", policy=own)

    executor = MigrationExecutor(connection)
    migrate(executor.loader.graph.leaf_nodes())

    assert Policy.objects.get(pk=shared.pk).team_id == a.pk
    assert Policy.objects.get(pk=own.pk).team_id == c.pk
    assert Policy.objects.get(pk=unused.pk).team_id == a.pk  # the first team
    copy = Policy.objects.get(team_id=b.pk, name="shared")
    assert copy.pk != shared.pk and copy.max_steps == 7
    assert list(copy.rules.values_list("name", "conditions")) == [
        ("vip", [{"field": "message", "op": "contains", "value": "vip"}])]
    assert Rule.objects.filter(policy_id=shared.pk).count() == 1  # the original keeps its own
    assert set(Agent.objects.filter(team_id=b.pk).values_list("policy_id", flat=True)) == {
        copy.pk}
    assert Agent.objects.get(slug="x").policy_id == shared.pk
