"""Each demo scenario end to end: service → Celery worker → simulator over HTTP → database."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from runs import errors, services
from runs.models import Escalation, Policy, Run, Step, ToolCall

from .helpers import open_escalation, refunds, submit, wait_status

pytestmark = pytest.mark.usefixtures("celery_worker")


def kinds(run: Run) -> list[str]:
    return list(run.steps.order_by("index").values_list("kind", flat=True))


def test_confident_answer_succeeds_with_costed_steps(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "succeeded")
    assert "1077" in run.answer
    assert kinds(run)[0] == "retrieval"  # retrieve first
    assert kinds(run)[-1] == "final"
    model_steps = run.steps.filter(kind="model")
    assert model_steps.exists()
    assert all(s.tokens_in > 0 and s.model == "sim-small" for s in model_steps)
    assert run.cost_usd == sum((s.cost_usd for s in model_steps), Decimal("0"))
    assert run.tokens_in == sum(s.tokens_in for s in model_steps)
    tool = run.steps.get(kind="tool")
    assert tool.name == "lookup_order" and tool.result["status"] == "in_transit"
    assert refunds(data_dir) == []


def test_small_refund_is_issued_without_approval(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1001")
    wait_status(run, "succeeded")
    assert [r["order_id"] for r in refunds(data_dir)] == ["1001"]
    assert not run.escalations.exists()


def test_refund_above_amount_needs_approval_then_is_issued_once(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    assert esc.reason == "approval_required"
    assert esc.proposed_tool == "issue_refund"
    assert esc.proposed_args["amount"] == 180.0 and esc.proposed_args["order_id"] == "1042"
    assert esc.context and esc.context[0]["source"].endswith(".md")
    assert refunds(data_dir) == []
    steps_before = run.steps.count()

    services.decide(escalation_id=esc.pk, user=demo["operator"], decision="approve")
    wait_status(run, "succeeded")
    assert len(refunds(data_dir)) == 1
    assert "Refund of $180" in run.answer
    # resumed from the checkpoint: the earlier steps are untouched, none repeated
    indexes = list(run.steps.values_list("index", flat=True))
    assert indexes == list(range(len(indexes)))
    assert run.steps.filter(kind="retrieval").count() == 1
    assert run.steps.filter(kind="tool", name="lookup_order").count() == 1
    assert run.steps.count() > steps_before
    assert ToolCall.objects.filter(run=run, tool="issue_refund", status="succeeded").count() == 1
    esc.refresh_from_db()
    assert esc.status == "decided" and esc.decided_by == demo["operator"]


def test_reject_means_the_action_is_never_performed(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    services.decide(escalation_id=open_escalation(run).pk, user=demo["operator"],
                    decision="reject", message="Item was used, no refund")
    wait_status(run, "succeeded", "failed", "waiting_human")
    assert refunds(data_dir) == []
    assert not ToolCall.objects.filter(run=run, tool="issue_refund").exists()
    assert "not" in run.answer.lower() and "Item was used" in run.answer


def test_unclear_request_asks_then_continues_with_the_reply(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "I want my money back")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    assert esc.reason == "low_confidence" and "order" in esc.question.lower()
    services.decide(escalation_id=esc.pk, user=demo["operator"], decision="reply",
                    message="It is order 1001")
    wait_status(run, "succeeded")
    assert [r["order_id"] for r in refunds(data_dir)] == ["1001"]
    human = run.steps.get(kind="human")
    assert human.args == {"operator": "operator", "message": "It is order 1001"}


def test_failing_tool_is_recorded_as_failed_and_escalated(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "Where is my order 9999?")
    wait_status(run, "waiting_human")
    tool = run.steps.get(kind="tool", name="lookup_order")
    assert tool.result is None and "unavailable" in tool.error
    assert open_escalation(run).reason == "tool_failed"
    assert ToolCall.objects.get(run=run, tool="lookup_order").status == "failed"


def test_abort_ends_the_run(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    services.decide(escalation_id=open_escalation(run).pk, user=demo["operator"],
                    decision="abort")
    run.refresh_from_db()
    assert (run.status, run.reason) == ("aborted", "aborted_by_operator")
    assert refunds(data_dir) == []


def test_two_operators_race_one_wins_one_resume_one_refund(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    results: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def decide(user):
        from django.db import connection

        barrier.wait()
        try:
            services.decide(escalation_id=esc.pk, user=user, decision="approve")
            results[user.username] = "won"
        except errors.AlreadyDecided as exc:
            results[user.username] = exc.message
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(u,)) for u in (demo["operator"],
                                                                     demo["admin"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(v == "won" for v in results.values()) == [False, True]
    winner = next(k for k, v in results.items() if v == "won")
    loser_msg = next(v for v in results.values() if v != "won")
    assert f"Already decided by {winner}" in loser_msg
    wait_status(run, "succeeded")
    assert len(refunds(data_dir)) == 1
    assert run.steps.filter(kind="human").count() == 1


def test_second_decision_and_decision_on_aborted_run_are_refused(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    services.decide(escalation_id=esc.pk, user=demo["operator"], decision="abort")
    with pytest.raises(errors.AlreadyDecided, match="Already decided by operator"):
        services.decide(escalation_id=esc.pk, user=demo["admin"], decision="approve")
    run.refresh_from_db()
    assert run.status == "aborted"


def test_policy_edits_apply_to_new_runs_only(demo, data_dir):
    policy = Policy.objects.get()
    policy.approval_amount_usd = Decimal("500")
    policy.save()
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    assert run.policy_snapshot["approval_amount_usd"] == "500.00"
    wait_status(run, "succeeded")  # 180 is below the new amount: no approval needed
    assert len(refunds(data_dir)) == 1
    assert not Escalation.objects.filter(run=run).exists()


def test_step_limit_fails_with_reason(demo, data_dir):
    policy = Policy.objects.get()
    policy.max_steps = 2
    policy.save()
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "failed")
    assert run.reason == "step_limit"
    # retrieval, model, tool: the next model call would be step 3, over the limit of 2
    assert kinds(run) == ["retrieval", "model", "tool", "final"]
    assert Step.objects.get(run=run, kind="final").error == "step_limit reached"


def test_bad_input_is_refused_before_anything_is_stored(demo):
    team, user = demo["team"], demo["operator"]
    with pytest.raises(errors.InputInvalid) as err:
        submit(team, user, "")
    assert "input.message" in err.value.fields  # named as in a submission
    with pytest.raises(errors.InputInvalid):
        submit(team, user, "x" * 5000)
    with pytest.raises(errors.NotFound, match="Unknown agent"):
        submit(team, user, "hello", agent="no-such-agent")
    with pytest.raises(errors.NotFound):
        submit(demo["other_team"], user, "hello")  # the agent is the demo team's
    assert Run.objects.count() == 0
