"""Approval policy: side effects above the limit, or listed tools, wait for an operator."""

from __future__ import annotations

import json

import pytest

from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.state import HumanInput

from .conftest import new_run
from .fakes import decision_reply, tool_call_reply

REFUND_ARGS = {"order_id": "1042", "amount": 180.0, "reason": "arrived broken"}


def _ask_for_refund(agent, policy, model, store, args=REFUND_ARGS, *then):
    model.script(
        tool_call_reply("lookup_order", {"order_id": args["order_id"]}),
        tool_call_reply("issue_refund", args, call_id="call_refund", confidence=0.95),
        *then,
    )
    run = new_run(f"Please refund order {args['order_id']}, it arrived broken.")
    return Engine(agent, policy, model, store).advance(run)


def _decide(agent, policy, model, store, decision, message=""):
    resumed = store.last_checkpoint()
    resumed.human_input = HumanInput(decision=decision, message=message, operator="op")
    return Engine(agent, policy, model, store).advance(resumed)


def test_refund_above_the_limit_waits_for_approval(agent, policy, model, store, journal):
    state = _ask_for_refund(agent, policy, model, store)

    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.APPROVAL_REQUIRED
    [esc] = store.escalations
    assert esc.reason == Reason.APPROVAL_REQUIRED
    assert esc.proposed_tool == "issue_refund"
    assert esc.proposed_args == REFUND_ARGS  # without the model's confidence field
    assert esc.confidence == 0.95
    assert esc.context  # the documents the agent used travel with the question
    assert journal() == []
    assert [row["tool"] for row in store.ledger.values()] == ["lookup_order"]
    assert store.kinds()[-1] == "escalation"


def test_approved_refund_runs_exactly_once_and_the_run_succeeds(
    agent, policy, model, store, journal
):
    _ask_for_refund(agent, policy, model, store)
    model.script(decision_reply("Your refund of $180 is on its way."))
    state = _decide(agent, policy, model, store, "approve")

    assert state.status == RunStatus.SUCCEEDED
    assert state.answer == "Your refund of $180 is on its way."
    [refund] = journal()
    assert (refund["order_id"], refund["amount"]) == ("1042", 180.0)
    refund_step = store.steps_of(StepKind.TOOL)[-1]
    assert refund_step.name == "issue_refund"
    assert refund_step.result == refund
    assert refund["idempotency_key"] == f"run-1:{refund_step.index}"
    assert json.loads(model.calls[-1].messages[-1]["content"]) == {"ok": True, "result": refund}
    assert store.kinds()[-6:] == ["model", "escalation", "human", "tool", "model", "final"]

    # the ended run stays ended: advancing it again issues nothing
    Engine(agent, policy, model, store).advance(store.last_checkpoint())
    assert len(journal()) == 1


def test_rejected_refund_never_runs_and_the_model_hears_why(agent, policy, model, store, journal):
    _ask_for_refund(agent, policy, model, store)
    model.script(decision_reply("We could not refund this order; an operator will follow up."))
    state = _decide(agent, policy, model, store, "reject", "already refunded by phone")

    assert journal() == []
    assert "issue_refund" not in [row["tool"] for row in store.ledger.values()]
    assert not [s for s in store.steps_of(StepKind.TOOL) if s.name == "issue_refund"]
    tool_msg, operator_msg = model.calls[-1].messages[-2:]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "call_refund"
    assert json.loads(tool_msg["content"]) == {
        "ok": False,
        "error": "rejected by operator: already refunded by phone",
    }
    assert operator_msg == {
        "role": "user",
        "content": "Operator: Rejected. already refunded by phone",
    }
    assert state.status == RunStatus.SUCCEEDED
    human = store.steps_of(StepKind.HUMAN)[0]
    assert (human.name, human.args["message"]) == ("reject", "already refunded by phone")


def test_aborted_escalation_ends_the_run_without_running_the_tool(
    agent, policy, model, store, journal
):
    _ask_for_refund(agent, policy, model, store)
    calls = len(model.calls)
    state = _decide(agent, policy, model, store, "abort", "fraud suspected")

    assert state.status == RunStatus.ABORTED
    assert state.reason == Reason.ABORTED_BY_OPERATOR
    assert journal() == []
    assert len(model.calls) == calls
    assert store.kinds()[-2:] == ["human", "final"]
    assert store.last_checkpoint().status == RunStatus.ABORTED


@pytest.mark.parametrize("amount", [25.0, 100.0])
def test_refund_at_or_below_the_limit_needs_no_approval(
    agent, policy, model, store, journal, amount
):
    args = {"order_id": "1042", "amount": amount, "reason": "partial"}
    state = _ask_for_refund(agent, policy, model, store, args, decision_reply("Refund issued."))

    assert state.status == RunStatus.SUCCEEDED
    assert store.escalations == []
    assert [r["amount"] for r in journal()] == [amount]


def test_refund_just_above_the_limit_needs_approval(agent, policy, model, store, journal):
    args = {"order_id": "1042", "amount": 100.01, "reason": ""}
    state = _ask_for_refund(agent, policy, model, store, args)
    assert state.reason == Reason.APPROVAL_REQUIRED
    assert journal() == []


def test_no_approval_limit_means_no_amount_escalation(agent, policy, model, store, journal):
    policy.approval_amount_usd = None
    state = _ask_for_refund(
        agent, policy, model, store, REFUND_ARGS, decision_reply("Refund issued.")
    )
    assert state.status == RunStatus.SUCCEEDED
    assert len(journal()) == 1


def test_a_tool_in_approval_tools_always_escalates(agent, policy, model, store):
    policy.approval_tools = ["lookup_order"]
    model.script(tool_call_reply("lookup_order", {"order_id": "1077"}, confidence=0.99))
    state = Engine(agent, policy, model, store).advance(new_run())

    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.APPROVAL_REQUIRED
    [esc] = store.escalations
    assert (esc.proposed_tool, esc.proposed_args) == ("lookup_order", {"order_id": "1077"})
    assert store.ledger == {}

    model.script(decision_reply("Order 1077 is in transit."))
    state = _decide(agent, policy, model, store, "approve")
    assert state.status == RunStatus.SUCCEEDED
    assert [row["tool"] for row in store.ledger.values()] == ["lookup_order"]
