"""The test kit (``agentdesk.testing``) on the shipped support-refunds agent: what an agent
author's tests look like, and that the kit reports what the real engine did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentdesk.agents.support_refunds.agent import AGENT
from agentdesk.runtime.agent import InputRejected
from agentdesk.runtime.options import OnBound
from agentdesk.runtime.outcomes import Reason, RunStatus
from agentdesk.testing import (
    FunctionModel,
    ModelCall,
    ScriptedModel,
    answer,
    approve,
    ask,
    call,
    default_policy,
    extend_budget,
    reject,
    reply,
    run_agent,
)

REFUND_1042 = {"order_id": "1042", "amount": 180.0, "reason": "arrived broken"}


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The refunds journal (the agent's outside witness) goes to a fresh folder."""
    monkeypatch.setenv("AGENTDESK_DATA_DIR", str(tmp_path))
    return tmp_path


def journal(data_dir: Path) -> list[dict]:
    path = data_dir / "refunds.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_run_that_succeeds_without_a_human() -> None:
    model = ScriptedModel(call("lookup_order", {"order_id": "1077"}),
                          answer("Order 1077 is in transit."))
    result = run_agent(AGENT, "Where is my order 1077?", model=model)

    result.assert_succeeded("Order 1077 is in transit.").assert_not_escalated()
    result.assert_called("lookup_order", order_id="1077").assert_not_called("issue_refund")
    result.assert_within_bounds()
    assert result.status == RunStatus.SUCCEEDED and result.reason == Reason.NONE
    [lookup] = result.tool_calls
    assert (lookup.executed, lookup.ok, lookup.result["status"]) == (True, True, "in_transit")
    assert lookup.confidence == 0.9
    assert [s.kind.value for s in result.steps] == ["retrieval", "model", "tool", "model",
                                                    "final"]
    assert result.usage.tokens_in == 200 and result.usage.cost_usd > 0
    # retrieval ran first, over the agent's knowledge folder, and the model was given it
    assert result.steps[0].result["documents"]
    assert "Relevant knowledge" in model.calls[0].system
    assert model.calls[0].tool_names == ["search_policy", "lookup_order", "issue_refund"]


def test_an_approval_escalation_then_a_scripted_approve(data_dir: Path) -> None:
    model = ScriptedModel(call("lookup_order", {"order_id": "1042"}),
                          call("issue_refund", REFUND_1042, confidence=0.95),
                          answer("Refunded $180 for order 1042."))
    result = run_agent(AGENT, "Refund order 1042, it arrived broken.", model=model,
                       decisions=[approve()])

    result.assert_escalated(Reason.APPROVAL_REQUIRED, tool="issue_refund", question="approve")
    result.assert_called("issue_refund", order_id="1042", amount=180.0)
    result.assert_succeeded("Refunded $180 for order 1042.").assert_within_bounds()
    [escalation] = result.escalations
    assert escalation.proposed_args == REFUND_1042
    assert [d.action.value for d in result.decisions] == ["approve"]
    # the side effect ran once, with the engine's idempotency key
    [refund] = journal(data_dir)
    assert refund["idempotency_key"].startswith("test-run:")
    assert result.tool_calls[1].result["refund_id"] == refund["refund_id"]


def test_a_rejected_proposal_is_proposed_but_not_called(data_dir: Path) -> None:
    model = ScriptedModel(call("lookup_order", {"order_id": "1042"}),
                          call("issue_refund", REFUND_1042),
                          answer("No refund was issued."))
    result = run_agent(AGENT, "Refund order 1042", model=model,
                       decisions=[reject("not without a photo")])

    result.assert_proposed("issue_refund", order_id="1042")
    result.assert_not_called("issue_refund").assert_succeeded()
    refund = result.tool_calls[1]
    assert (refund.executed, refund.ok) == (False, False)
    assert "not without a photo" in refund.error
    assert model.calls[-1].operator_messages == ["Rejected. not without a photo"]
    assert journal(data_dir) == []


def test_decisions_can_depend_on_the_escalation() -> None:
    model = ScriptedModel(call("lookup_order", {"order_id": "2001"}),
                          call("issue_refund", {"order_id": "2001", "amount": 1250.0}),
                          answer("I could not refund that much."))
    result = run_agent(AGENT, "Refund order 2001", model=model, decisions=[
        lambda esc: approve() if esc.proposed_args["amount"] < 500 else reject("too much")])
    result.assert_not_called("issue_refund").assert_succeeded()


def test_a_failing_tool_is_recorded_and_escalated_never_invented() -> None:
    model = ScriptedModel(call("lookup_order", {"order_id": "9999"}))
    result = run_agent(AGENT, "Where is my order 9999?", model=model)

    result.assert_waiting(Reason.TOOL_FAILED).assert_escalated(Reason.TOOL_FAILED)
    [lookup] = result.tool_calls
    assert lookup.executed and lookup.ok is False and lookup.result is None
    assert "503" in lookup.error
    assert result.steps[-2].attempts == 3  # transient: retried, then given up
    assert result.decisions_left == 0


def test_an_operator_reply_to_a_question_continues_the_run() -> None:
    model = ScriptedModel(ask("Which order number is this about?"),
                          call("lookup_order", {"order_id": "1001"}),
                          answer("Order 1001 was delivered."))
    result = run_agent(AGENT, "I want my money back", model=model,
                       decisions=[reply("order 1001")])
    result.assert_escalated(Reason.LOW_CONFIDENCE, question="which order")
    result.assert_called("lookup_order", order_id="1001").assert_succeeded()


def test_a_bound_ends_the_run_and_fails_assert_within_bounds() -> None:
    def keep_searching(request: ModelCall):
        return call("search_policy", {"query": f"refund rule {len(request.tool_results)}"})

    result = run_agent(AGENT, "Where is my order?", model=FunctionModel(keep_searching),
                       policy=default_policy(max_steps=6))

    result.assert_failed(Reason.STEP_LIMIT)
    with pytest.raises(AssertionError, match="hit a bound: step_limit"):
        result.assert_within_bounds()
    with pytest.raises(AssertionError, match="expected the run to succeed") as failed:
        result.assert_succeeded()
    assert "#0 retrieval" in str(failed.value)  # the trace comes with the failure


def test_extend_budget_resumes_a_run_that_escalated_its_bound() -> None:
    def look_then_answer(request: ModelCall):
        if len(request.tool_results) < 2:
            return call("lookup_order", {"order_id": ["1001", "1077"][len(request.tool_results)]})
        return answer("Both orders are on their way or delivered.")

    result = run_agent(AGENT, "Orders 1001 and 1077?", model=FunctionModel(look_then_answer),
                       policy=default_policy(max_steps=4, on_bound=OnBound.ESCALATE),
                       decisions=[extend_budget()])
    result.assert_escalated(Reason.STEP_LIMIT).assert_succeeded()
    assert result.policy.max_steps == 8


def test_a_function_model_sees_the_tool_results() -> None:
    def brain(request: ModelCall):
        last = request.last_tool_result
        if last is None:
            return call("lookup_order", {"order_id": "1077"})
        return answer(f"Order {last.args['order_id']} is {last.result['status']}.")

    result = run_agent(AGENT, {"message": "Where is 1077?"}, model=FunctionModel(brain))
    result.assert_succeeded("Order 1077 is in_transit.")


def test_the_input_is_checked_as_a_submission_is() -> None:
    with pytest.raises(InputRejected) as rejected:
        run_agent(AGENT, {"message": ""}, model=ScriptedModel())
    assert set(rejected.value.fields) == {"message"}


def test_an_unscripted_model_call_fails_the_test_loudly() -> None:
    with pytest.raises(AssertionError, match="unscripted model call #1"):
        run_agent(AGENT, "Where is my order 1077?", model=ScriptedModel())


def test_assertions_name_what_happened_instead() -> None:
    result = run_agent(AGENT, "Where is my order 1077?",
                       model=ScriptedModel(answer("In transit.")))
    with pytest.raises(AssertionError, match=r"expected a call to lookup_order"):
        result.assert_called("lookup_order")
    with pytest.raises(AssertionError, match="expected an escalation"):
        result.assert_escalated()
    with pytest.raises(AssertionError, match="expected the answer"):
        result.assert_succeeded("Delivered.")
