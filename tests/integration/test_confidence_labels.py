"""Every decision that judges a model's proposal is a calibration label, written in the
decision's transaction; abort, extend budget and answering the agent's own question are not.
Confident runs no human saw are sampled for review when they end, deterministically."""

from __future__ import annotations

import pytest

from runs import labels, services
from runs.models import ConfidenceLabel, Policy, ReviewItem, Step

from .calibration_data import proposed
from .console_data import escalation
from .console_data import no_resume as no_resume  # a fixture
from .helpers import open_escalation, submit, wait_status

EDITED = {"order_id": "1042", "amount": 90, "reason": "partial refund"}


@pytest.mark.usefixtures("no_resume")
@pytest.mark.parametrize(("decision", "extra", "correct"), [
    ("approve", {}, True),
    ("approve", {"args": EDITED}, False),  # edited: not what the agent proposed
    ("reject", {"message": "no"}, False),
    ("reply", {"message": "refund 90 instead"}, False),
    ("take_over", {"message": "done by hand"}, False),
])
def test_a_decision_on_a_proposal_is_a_label(demo, decision, extra, correct):
    esc = proposed(demo["team"], confidence=0.64, tier="large", model="sim-large")
    services.decide(escalation_id=esc.pk, user=demo["operator"], decision=decision, **extra)
    label = ConfidenceLabel.objects.get()
    assert (label.correct, label.source) == (correct, "decision")
    assert (label.tier, label.model, label.confidence) == ("large", "sim-large", 0.64)
    assert (label.run_id, label.step_index) == (esc.run_id, 0)  # the model step judged
    assert label.agent == esc.run.agent and label.team == demo["team"]
    assert label.decided_by == demo["operator"]


@pytest.mark.usefixtures("no_resume")
def test_the_model_steps_confidence_is_the_labels(demo):
    esc = proposed(demo["team"], confidence=0.9)
    Step.objects.filter(run=esc.run, index=0).update(confidence=0.55)
    services.decide(escalation_id=esc.pk, user=demo["operator"], decision="reject")
    assert ConfidenceLabel.objects.get().confidence == 0.55


@pytest.mark.usefixtures("no_resume")
def test_decisions_that_do_not_judge_a_proposal_are_not_labels(demo):
    team, op = demo["team"], demo["operator"]
    aborted = proposed(team)
    services.decide(escalation_id=aborted.pk, user=op, decision="abort")
    budget = proposed(team, reason="step_limit")
    services.decide(escalation_id=budget.pk, user=op, decision="extend_budget",
                    budget={"max_steps": 100})
    question = proposed(team, reason="low_confidence", proposed_tool="", proposed_args={})
    services.decide(escalation_id=question.pk, user=op, decision="reply", message="order 1042")
    by_rule = escalation(team, confidence=1.0)  # a rule's fixed call: no model step before it
    Step.objects.create(run=by_rule.run, index=0, kind="rule", name="big refunds")
    services.decide(escalation_id=by_rule.pk, user=op, decision="reject")
    assert not ConfidenceLabel.objects.exists()


@pytest.mark.usefixtures("no_resume")
def test_a_refused_or_lost_decision_writes_no_label(demo):
    esc = proposed(demo["team"])
    services.decide(escalation_id=esc.pk, user=demo["operator"], decision="approve")
    with pytest.raises(Exception, match="Already decided"):
        services.decide(escalation_id=esc.pk, user=demo["admin"], decision="reject")
    assert ConfidenceLabel.objects.count() == 1


@pytest.mark.usefixtures("celery_worker")
def test_a_real_approval_labels_the_small_models_step(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    services.decide(escalation_id=esc.pk, user=demo["operator"], decision="approve")
    label = ConfidenceLabel.objects.get(run=run)
    step = run.steps.get(index=label.step_index)
    assert step.kind == "model" and label.step_index == esc.step_index - 1
    assert (label.tier, label.model, label.correct) == (step.tier, step.model, True)
    assert label.confidence == step.confidence
    wait_status(run, "succeeded")
    assert not ReviewItem.objects.filter(run=run).exists()  # a human decided: not sampled


# -- the review sample ---------------------------------------------------------------------


def test_review_selection_is_deterministic_and_keeps_the_rate():
    ids = range(1, 20_001)
    chosen = [i for i in ids if labels.in_sample(i, 0.05)]
    assert chosen == [i for i in ids if labels.in_sample(i, 0.05)]  # same runs every time
    assert 0.045 < len(chosen) / len(ids) < 0.055
    assert set(chosen) <= {i for i in ids if labels.in_sample(i, 0.2)}  # a bigger sample
    assert not any(labels.in_sample(i, 0.0) for i in ids)
    assert all(labels.in_sample(i, 1.0) for i in ids)


@pytest.mark.usefixtures("celery_worker")
def test_confident_auto_completed_runs_are_sampled_when_they_end(demo, data_dir):
    Policy.objects.update(review_sample_rate=1.0)
    runs = [submit(demo["team"], demo["operator"], message) for message in
            ("Where is my order 1077?", "Where is my order 1001?")]
    finished = [wait_status(run, "succeeded", "failed", "waiting_human") for run in runs]
    auto = [r for r in finished if r.status == "succeeded" and not r.escalations.exists()]
    assert auto, "the simulator answers these confidently"
    for run in finished:
        item = ReviewItem.objects.filter(run=run).first()
        assert (item is not None) == (run in auto)
        if item is not None:
            last = run.steps.filter(kind="model").order_by("-index").first()
            assert (item.step_index, item.tier, item.model, item.confidence) == (
                last.index, last.tier, last.model, last.confidence)
            assert item.status == "pending" and item.team == demo["team"]
    Policy.objects.update(review_sample_rate=0.0)
    later = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(later, "succeeded", "failed", "waiting_human")
    assert not ReviewItem.objects.filter(run=later).exists()  # rate 0: none
