"""Confidence signals end to end, through the simulator over HTTP: the raw signals and the
combined value land on the Step rows and the samples are paid for; and a rejected action
proposed again is escalated, never executed."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from agentdesk.runtime.gateway import OpenAIGateway
from runs import execution, services
from runs.budgets import spent_today
from runs.models import ModelProfile, Policy, ToolCall

from .helpers import open_escalation, refunds, submit, wait_status

pytestmark = pytest.mark.usefixtures("celery_worker")
SIGNALS = ["self_report", "logprobs", "agreement"]


def test_raw_signals_and_their_minimum_land_on_the_steps_and_samples_are_paid_for(
        demo, data_dir):
    ModelProfile.objects.filter(name__in=["sim-small", "sim-large"]).update(logprobs=True)
    policy = Policy.objects.get(agents__slug="support-refunds")
    policy.confidence_signals, policy.agreement_samples = SIGNALS, 2
    policy.full_clean()
    policy.save()

    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "succeeded", "waiting_human", "failed")
    steps = list(run.steps.filter(kind="model").order_by("index"))
    assert steps and all(not s.error for s in steps)
    for step in steps:
        signals = step.args["signals"]
        assert set(signals) == set(SIGNALS)
        assert signals["self_report"] is not None
        available = [signals[name] for name in step.args["confidence_from"]]
        assert step.confidence == pytest.approx(min(available))
        assert all(0 <= v <= 1 for v in signals.values() if v is not None)
        if "agreement_skipped" not in step.args:
            samples = step.args["agreement_samples"]
            assert len(samples) == 2 and signals["agreement"] is not None
            # the step's tokens and cost are the decision call's plus its samples'
            sample_cost = sum((Decimal(s["cost_usd"]) for s in samples), Decimal(0))
            assert all(Decimal(s["cost_usd"]) > 0 for s in samples)
            assert step.cost_usd > sample_cost > 0
            assert step.tokens_in > sum(s["tokens_in"] for s in samples)
    tool_steps = [s for s in steps if "tool_call" in (s.result or {})]
    decisions = [s for s in steps if "answer" in (s.result or {})]
    assert tool_steps and decisions
    # a native tool call carries no logprobs (OpenAI's are for the content only)
    assert all(s.args["signals"]["logprobs"] is None for s in tool_steps)
    assert any(s.args["signals"]["logprobs"] is not None for s in decisions)
    run.refresh_from_db()
    assert run.cost_usd == sum((s.cost_usd for s in steps), Decimal(0))
    assert spent_today(demo["team"].pk) == run.cost_usd  # the team's budget paid it all


class ForgetsRejections:
    """A model that ignores what operators say: it is never shown a rejected call, its
    result or the operator's words, so it proposes the same action again, confidently."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def complete(self, *, messages: list[dict[str, Any]], **kwargs: Any):
        rejected = {m["tool_call_id"] for m in messages if m.get("role") == "tool"
                    and "rejected by operator" in m.get("content", "")}
        kept = [m for m in messages
                if m.get("tool_call_id") not in rejected
                and not any(c["id"] in rejected for c in m.get("tool_calls") or [])
                and not str(m.get("content") or "").startswith("Operator: Rejected")]
        return self.inner.complete(messages=kept, **kwargs)


def test_a_rejected_refund_proposed_again_confidently_is_escalated_not_issued(
        demo, data_dir, llmsim, monkeypatch):
    model = ForgetsRejections(OpenAIGateway(base_url=llmsim, api_key="sim", max_retries=0))
    monkeypatch.setattr(execution, "gateway", lambda base_url, api_key: model)
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    first = open_escalation(run)
    assert (first.reason, first.proposed_tool) == ("approval_required", "issue_refund")
    services.decide(escalation_id=first.pk, user=demo["operator"], decision="reject",
                    message="Item was used, no refund")

    wait_status(run, "waiting_human", "succeeded", "failed")
    assert run.status == "waiting_human"
    again = open_escalation(run)
    assert again.pk != first.pk and again.reason == "approval_required"
    assert "rejected" in again.question and "earlier in this run" in again.question
    assert again.proposed_tool == "issue_refund"
    assert again.proposed_args == first.proposed_args
    again_step = run.steps.filter(kind="model").order_by("-index").first()
    assert again_step.confidence >= Policy.objects.get().confidence_threshold  # confident
    assert refunds(data_dir) == []
    assert not ToolCall.objects.filter(run=run, tool="issue_refund").exists()
    assert json.loads(json.dumps(run.state))["rejected_calls"]  # kept in the checkpoint
