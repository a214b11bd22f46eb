"""Reject is remembered: a call an operator rejected is never executed again in the same run
without a new approval, however confidently the model proposes it again."""

from __future__ import annotations

from decimal import Decimal

from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import Reason, RunStatus
from agentdesk.runtime.proposals import call_signature
from agentdesk.runtime.state import HumanInput, RunState

from .conftest import new_run
from .fakes import decision_reply, tool_call_reply

REFUND = {"order_id": "1042", "amount": 180.0, "reason": "arrived broken"}


def _decide(agent, policy, model, store, decision: str, message: str = "") -> RunState:
    resumed = store.last_checkpoint()
    resumed.human_input = HumanInput(decision=decision, message=message, operator="op")
    return Engine(agent, policy, model, store).advance(resumed)


def _reject_the_refund(agent, policy, model, store) -> RunState:
    model.script(tool_call_reply("lookup_order", {"order_id": "1042"}),
                 tool_call_reply("issue_refund", REFUND, call_id="call_1", confidence=0.95))
    state = Engine(agent, policy, model, store).advance(new_run("Refund order 1042, broken."))
    assert state.reason == Reason.APPROVAL_REQUIRED
    return state


def test_the_same_call_proposed_again_confidently_goes_back_to_a_human(
        agent, policy, model, store, journal):
    _reject_the_refund(agent, policy, model, store)
    # same tool, same arguments (in another order), more confident than ever
    again = {"reason": "arrived broken", "amount": 180.0, "order_id": "1042"}
    model.script(tool_call_reply("issue_refund", again, call_id="call_2", confidence=0.99))
    state = _decide(agent, policy, model, store, "reject", "Item was used, no refund")

    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.APPROVAL_REQUIRED
    first, second = store.escalations
    assert "rejected" in second.question and "earlier in this run" in second.question
    assert second.proposed_tool == "issue_refund" and second.proposed_args == REFUND
    assert journal() == []
    assert [row["tool"] for row in store.ledger.values()] == ["lookup_order"]
    assert store.last_checkpoint().rejected_calls == [
        call_signature(state.pending_call)]


def test_a_new_approval_lets_it_run_once(agent, policy, model, store, journal):
    _reject_the_refund(agent, policy, model, store)
    model.script(tool_call_reply("issue_refund", REFUND, call_id="call_2", confidence=0.99))
    _decide(agent, policy, model, store, "reject", "Wait for the photo.")
    model.script(decision_reply("Refund of $180 issued for order 1042."))
    state = _decide(agent, policy, model, store, "approve")
    assert state.status == RunStatus.SUCCEEDED
    assert [r["order_id"] for r in journal()] == ["1042"]


def test_it_holds_for_a_call_that_needs_no_approval_by_itself(
        agent, policy, model, store, journal):
    policy.approval_amount_usd = Decimal("1000")  # 180 would go through on its own
    model.script(tool_call_reply("lookup_order", {"order_id": "1042"}),
                 tool_call_reply("issue_refund", REFUND, confidence=0.4), model=policy.small_model)
    model.script(tool_call_reply("issue_refund", REFUND, confidence=0.5), model=policy.large_model)
    state = Engine(agent, policy, model, store).advance(new_run("Refund order 1042, broken."))
    assert state.reason == Reason.LOW_CONFIDENCE

    model.script(tool_call_reply("issue_refund", REFUND, confidence=0.99),
                 model=policy.large_model)
    state = _decide(agent, policy, model, store, "reject", "No.")
    assert (state.status, state.reason) == (RunStatus.WAITING_HUMAN, Reason.APPROVAL_REQUIRED)
    assert journal() == []


def test_other_arguments_are_another_call(agent, policy, model, store, journal):
    _reject_the_refund(agent, policy, model, store)
    partial = {**REFUND, "amount": 50.0}  # under the approval amount
    model.script(tool_call_reply("issue_refund", partial, confidence=0.95),
                 decision_reply("Refunded $50 for order 1042."))
    state = _decide(agent, policy, model, store, "reject", "Only refund $50.")
    assert state.status == RunStatus.SUCCEEDED
    assert [r["amount"] for r in journal()] == [50.0]


def test_a_reply_is_not_a_rejection(agent, policy, model, store):
    _reject_the_refund(agent, policy, model, store)
    model.script(decision_reply("Waiting for the customer's photo."))
    state = _decide(agent, policy, model, store, "reply", "Ask for a photo first.")
    assert state.rejected_calls == []
