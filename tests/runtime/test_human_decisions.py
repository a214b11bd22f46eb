"""Operators' decisions: take over, edit & approve, reject a final answer, abort."""

from __future__ import annotations

import json

from agentdesk.runtime.loop import FINAL_ANSWER, Engine
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.state import HumanInput

from .conftest import LARGE, SMALL, new_run
from .fakes import decision_reply, tool_call_reply

REFUND_ARGS = {"order_id": "1042", "amount": 180.0, "reason": "arrived broken"}


def _await_refund_approval(agent, policy, model, store):
    model.script(
        tool_call_reply("lookup_order", {"order_id": "1042"}),
        tool_call_reply("issue_refund", REFUND_ARGS, call_id="call_refund", confidence=0.95),
    )
    state = Engine(agent, policy, model, store).advance(new_run("Refund order 1042, broken."))
    assert state.reason == Reason.APPROVAL_REQUIRED
    return state


def _await_unsure_answer(agent, policy, model, store):
    model.script(decision_reply("Probably shipped.", confidence=0.3), model=SMALL)
    model.script(decision_reply("It shipped on Monday.", confidence=0.5), model=LARGE)
    state = Engine(agent, policy, model, store).advance(new_run())
    assert state.reason == Reason.LOW_CONFIDENCE
    assert state.pending_call is not None and state.pending_call.tool == FINAL_ANSWER
    return state


def _decide(agent, policy, model, store, decision, message="", **extra):
    resumed = store.last_checkpoint()
    resumed.human_input = HumanInput(decision=decision, message=message, operator="op", **extra)
    return Engine(agent, policy, model, store).advance(resumed)


# -- take over -----------------------------------------------------------------------------


def test_take_over_finishes_with_the_operators_message_and_never_runs_the_tool(
    agent, policy, model, store, journal
):
    _await_refund_approval(agent, policy, model, store)
    calls = len(model.calls)
    state = _decide(agent, policy, model, store, "take_over", "I refunded $150 by phone.")

    assert state.status == RunStatus.SUCCEEDED
    assert state.reason == Reason.NONE
    assert state.answer == "I refunded $150 by phone."
    assert state.pending_call is None
    assert journal() == []
    assert [row["tool"] for row in store.ledger.values()] == ["lookup_order"]
    assert len(model.calls) == calls
    assert store.kinds()[-3:] == ["escalation", "human", "final"]
    human = store.steps_of(StepKind.HUMAN)[0]
    assert (human.name, human.args["operator"]) == ("take_over", "op")
    assert store.steps[-1].result == {"answer": "I refunded $150 by phone."}
    # the transcript stays well formed: the held call is answered as not executed
    last = state.messages[-1]
    assert (last["role"], last["tool_call_id"]) == ("tool", "call_refund")
    assert json.loads(last["content"]) == {
        "ok": False, "error": "not executed: an operator took over"}


def test_take_over_of_an_unsure_answer_replaces_it(agent, policy, model, store):
    _await_unsure_answer(agent, policy, model, store)
    state = _decide(agent, policy, model, store, "take_over", "It is out for delivery today.")
    assert state.status == RunStatus.SUCCEEDED
    assert state.answer == "It is out for delivery today."
    assert state.messages[-1]["role"] == "assistant"  # no tool reply for a final answer
    assert len(model.calls) == 2


# -- edit & approve ------------------------------------------------------------------------


def test_approve_with_edited_args_runs_the_tool_with_them(agent, policy, model, store, journal):
    _await_refund_approval(agent, policy, model, store)
    edited = {"order_id": "1042", "amount": 90.0, "reason": "partial: one item broken"}
    model.script(decision_reply("A refund of $90 is on its way."))
    state = _decide(agent, policy, model, store, "approve", "half only", args=edited)

    assert state.status == RunStatus.SUCCEEDED
    [refund] = journal()
    assert (refund["order_id"], refund["amount"]) == ("1042", 90.0)
    refund_step = store.steps_of(StepKind.TOOL)[-1]
    assert (refund_step.name, refund_step.args) == ("issue_refund", edited)
    assert refund_step.result == refund
    human = store.steps_of(StepKind.HUMAN)[0]
    assert human.args["edited_args"] == edited
    [ledger_row] = [r for r in store.ledger.values() if r["tool"] == "issue_refund"]
    assert ledger_row["args"] == edited

    # the transcript the model sees next shows the call as it was really made
    messages = model.calls[-1].messages
    [assistant] = [m for m in messages
                   if any(tc["id"] == "call_refund" for tc in m.get("tool_calls") or [])]
    arguments = json.loads(assistant["tool_calls"][0]["function"]["arguments"])
    assert {k: v for k, v in arguments.items() if k != "confidence"} == edited
    assert arguments["confidence"] == 0.95
    assert json.loads(messages[-1]["content"]) == {"ok": True, "result": refund}


def test_approve_without_args_runs_the_proposed_call(agent, policy, model, store, journal):
    _await_refund_approval(agent, policy, model, store)
    model.script(decision_reply("Refunded."))
    _decide(agent, policy, model, store, "approve")
    [refund] = journal()
    assert refund["amount"] == 180.0
    assert "edited_args" not in store.steps_of(StepKind.HUMAN)[0].args


# -- reject --------------------------------------------------------------------------------


def test_reject_of_a_final_answer_lets_the_model_answer_again(agent, policy, model, store):
    _await_unsure_answer(agent, policy, model, store)
    model.script(decision_reply("Order 1077 is in transit, due Friday.", confidence=0.9),
                 model=LARGE)
    state = _decide(agent, policy, model, store, "reject", "Check the tracking status.")

    assert state.status == RunStatus.SUCCEEDED
    assert state.answer == "Order 1077 is in transit, due Friday."
    assert len(model.calls) == 3
    sent = model.calls[-1].messages
    assert sent[-1] == {"role": "user", "content": "Operator: Rejected. Check the tracking status."}
    # the rejected answer stays in the transcript, with no tool reply for it
    assert sent[-2]["role"] == "assistant"
    assert json.loads(sent[-2]["content"])["answer"] == "It shipped on Monday."
    assert store.kinds()[-3:] == ["human", "model", "final"]
    assert store.steps_of(StepKind.HUMAN)[0].name == "reject"


def test_a_rejected_answer_that_comes_back_unsure_escalates_again(agent, policy, model, store):
    _await_unsure_answer(agent, policy, model, store)
    model.script(decision_reply("Perhaps Monday.", confidence=0.2), model=LARGE)
    state = _decide(agent, policy, model, store, "reject", "Not good enough.")
    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.LOW_CONFIDENCE
    assert [e.proposed_args for e in store.escalations] == [
        {"answer": "It shipped on Monday."}, {"answer": "Perhaps Monday."}]


# -- abort ---------------------------------------------------------------------------------


def test_abort_ends_the_run_as_aborted_by_the_operator(agent, policy, model, store, journal):
    _await_unsure_answer(agent, policy, model, store)
    state = _decide(agent, policy, model, store, "abort", "spam")

    assert state.status == RunStatus.ABORTED
    assert state.reason == Reason.ABORTED_BY_OPERATOR
    assert state.answer is None
    assert state.pending_call is None
    assert len(model.calls) == 2
    assert store.kinds()[-2:] == ["human", "final"]
    final = store.steps[-1]
    assert (final.name, final.result) == ("aborted", None)
    checkpoint = store.last_checkpoint()
    assert (checkpoint.status, checkpoint.reason) == (RunStatus.ABORTED,
                                                      Reason.ABORTED_BY_OPERATOR)
    # an aborted run stays aborted
    again = Engine(agent, policy, model, store).advance(checkpoint)
    assert again.status == RunStatus.ABORTED
    assert len(model.calls) == 2
