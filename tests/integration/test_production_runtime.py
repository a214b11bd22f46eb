"""Issue-4 behaviours end to end: budgets, bounds that escalate, deadlines, rules, cache,
the reaper, and the operator's extra decisions — through the real worker and simulator."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from runs import errors, maintenance, services
from runs.models import Escalation, Policy, Rule, Run, TeamDailySpend

from ..conftest import wait_for
from .helpers import open_escalation, refunds, submit, wait_status

pytestmark = pytest.mark.usefixtures("celery_worker", "data_dir")


def policy(**changes) -> Policy:
    p = Policy.objects.get()
    for name, value in changes.items():
        setattr(p, name, value)
    p.save()
    return p


def test_team_budget_is_never_overshot_by_50_concurrent_runs(demo):
    policy(cache_ttl_seconds=0)
    team = demo["team"]
    team.daily_budget_usd = Decimal("0.0020")
    team.save()
    runs = [submit(team, demo["operator"], f"Where is my order 1077? (ticket {i})")
            for i in range(50)]
    for run in runs:
        wait_status(run, "succeeded", "failed", timeout=60)
    spend = TeamDailySpend.objects.get(team=team)
    assert spend.spent_usd <= team.daily_budget_usd
    assert spend.reserved_usd == 0
    assert spend.spent_usd == sum((r.cost_usd for r in Run.objects.all()), Decimal("0"))
    reasons = [r.reason for r in Run.objects.all()]
    assert reasons.count("team_budget") > 0  # the budget really was the limit
    assert reasons.count("") > 0  # and the runs before it succeeded


def test_bound_escalates_and_extending_it_resumes_with_work_kept(demo):
    policy(on_bound="escalate", max_steps=3)
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    assert (esc.reason, run.reason) == ("step_limit", "step_limit")
    with pytest.raises(errors.AppError) as err:
        services.decide(escalation_id=esc.pk, user=demo["operator"], decision="extend_budget",
                        budget={"max_steps": 1})
    assert "max_steps" in err.value.fields
    services.decide(escalation_id=esc.pk, user=demo["operator"], decision="extend_budget",
                    budget={"max_steps": 20})
    wait_status(run, "succeeded")
    assert run.policy_snapshot["max_steps"] == 20
    assert run.steps.filter(kind="retrieval").count() == 1
    assert run.steps.filter(kind="tool", name="lookup_order").count() == 1


def test_running_runs_keep_their_policy_snapshot(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    policy(max_steps=1)  # an admin edit while the run waits
    services.decide(escalation_id=open_escalation(run).pk, user=demo["operator"],
                    decision="approve")
    wait_status(run, "succeeded")
    assert len(refunds(data_dir)) == 1


@pytest.mark.parametrize(("action", "status"), [("fail", "failed"), ("fallback", "succeeded")])
def test_human_wait_deadline_applies_the_policy_action(demo, action, status):
    policy(human_timeout_seconds=60, human_timeout_action=action,
           fallback_answer="A colleague will get back to you within a day.")
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    assert esc.deadline_at is not None
    assert maintenance.expire_escalations() == 0  # not yet due
    assert maintenance.expire_escalations(now=esc.deadline_at + timedelta(seconds=1)) == 1
    run.refresh_from_db()
    esc.refresh_from_db()
    assert (run.status, run.reason, esc.status) == (status, "human_timeout", "expired")
    if action == "fallback":
        assert run.answer.startswith("A colleague")
    with pytest.raises(errors.AppError):
        services.decide(escalation_id=esc.pk, user=demo["operator"], decision="approve")


def test_rules_decide_before_any_model(demo):
    p = policy()
    Rule.objects.create(policy=p, name="password-reset", action="answer",
                        conditions=[{"field": "message", "op": "contains", "value": "password"}],
                        answer="Reset it at /account/password (you wrote: {message})")
    Rule.objects.create(policy=p, name="legal", action="escalate", priority=1,
                        conditions=[{"field": "message", "op": "regex", "value": "lawyer|sue"}],
                        question="Legal threat: a human must answer.")
    answered = submit(demo["team"], demo["operator"], "I forgot my password")
    wait_status(answered, "succeeded")
    assert "/account/password" in answered.answer
    assert list(answered.steps.values_list("kind", flat=True)) == ["retrieval", "rule", "final"]
    escalated = submit(demo["team"], demo["operator"], "My lawyer will sue about order 1042")
    wait_status(escalated, "waiting_human")
    assert open_escalation(escalated).reason == "rule_matched"
    assert not escalated.steps.filter(kind="model").exists()


def test_identical_requests_are_served_from_the_cache_at_no_cost(demo):
    first = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(first, "succeeded")
    second = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(second, "succeeded")
    assert first.cost_usd > 0 and second.cost_usd == 0
    hits = second.steps.filter(kind="model")
    assert hits.exists() and all(s.args.get("cache_hit") for s in hits)
    assert second.answer == first.answer


def test_reaper_brings_back_a_run_whose_worker_died(demo):
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "succeeded")
    Run.objects.filter(pk=run.pk).update(status="running", lease_owner="dead-worker",
                                         lease_expires_at=timezone.now() - timedelta(seconds=5),
                                         state={**run.state, "status": "running",
                                                "phase": "reason", "answer": None},
                                         finished_at=None)
    assert run.pk in maintenance.runs_to_reap()
    assert maintenance.reap_runs() >= 1
    wait_for(lambda: Run.objects.get(pk=run.pk).status == "succeeded")


def test_edit_and_approve_validates_then_runs_the_edited_call(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    with pytest.raises(errors.InputInvalid) as err:
        services.decide(escalation_id=esc.pk, user=demo["operator"], decision="approve",
                        args={"order_id": "1042", "amount": -5, "reason": "x"})
    assert "amount" in err.value.fields
    assert Escalation.objects.get(pk=esc.pk).status == "open"
    services.decide(escalation_id=esc.pk, user=demo["operator"], decision="approve",
                    args={"order_id": "1042", "amount": 50, "reason": "partial refund"})
    wait_status(run, "succeeded")
    assert [r["amount"] for r in refunds(data_dir)] == [50.0]
    assert run.steps.get(kind="human").args["edited_args"]["amount"] == 50


def test_take_over_finishes_the_run_with_the_operators_answer(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    services.decide(escalation_id=open_escalation(run).pk, user=demo["operator"],
                    decision="take_over", message="Refunded by phone, ticket 77.")
    wait_status(run, "succeeded")
    assert run.answer == "Refunded by phone, ticket 77."
    assert refunds(data_dir) == []


def test_a_crashing_run_ends_failed_instead_of_looping(demo, monkeypatch):
    from agentdesk.runtime.loop import Engine

    def broken(self, state, slice_seconds=30.0):
        raise RuntimeError("bug in the engine")

    monkeypatch.setattr(Engine, "advance", broken)
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "failed")
    assert run.reason == "internal_error"
    assert "bug in the engine" in run.steps.get(kind="final").error
    assert run.pk not in maintenance.runs_to_reap()


def test_reaping_does_not_enqueue_the_same_run_every_tick(demo):
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "succeeded")
    Run.objects.filter(pk=run.pk).update(
        status="queued", lease_owner="", updated_at=timezone.now() - timedelta(hours=1),
        state={**run.state, "status": "queued", "phase": "reason", "answer": None},
        finished_at=None,
    )
    assert maintenance.runs_to_reap() == [run.pk]
    assert maintenance.reap_runs() == 1
    assert run.pk not in maintenance.runs_to_reap()  # its message is in the queue now
    wait_for(lambda: Run.objects.get(pk=run.pk).status == "succeeded")
