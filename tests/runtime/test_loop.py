"""The loop's main path: retrieve first, then decide, act through tools, and answer."""

from __future__ import annotations

import json

import pytest

from agentdesk.agents.support_refunds.tools import _orders
from agentdesk.runtime.knowledge import FolderKnowledge
from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.state import Usage

from .conftest import PRICES, SMALL, new_run
from .fakes import InMemoryStore, ScriptedModel, SimulatedCrash, decision_reply, tool_call_reply


def test_retrieval_is_step_zero_and_precedes_every_model_call(engine, model, store):
    calls_at_commit = []
    store.after_commit = lambda s: calls_at_commit.append((s.steps[-1].kind, len(model.calls)))
    model.script(decision_reply("Refunds arrive within 5 business days."))
    state = engine.advance(new_run("How long does a refund take to arrive?"))

    assert state.status == RunStatus.SUCCEEDED
    first = store.steps[0]
    assert (first.index, first.kind) == (0, StepKind.RETRIEVAL)
    assert calls_at_commit[0] == (StepKind.RETRIEVAL, 0)  # committed before any model call
    assert first.result["documents"][0] == "refund-policy.md"
    assert [d["source"] for d in state.context] == first.result["documents"]

    refund_passage = FolderKnowledge.from_folder(engine.agent.knowledge_dir).search(
        "refund-policy arrive refund", 1)[0]
    assert refund_passage.source == "refund-policy.md"
    system, user = model.calls[0].messages[:2]
    assert system["role"] == "system"
    assert system["content"].startswith("You are the support-refunds agent.")
    assert f"[refund-policy.md] {refund_passage.text}" in system["content"]
    assert user == {"role": "user", "content": "How long does a refund take to arrive?"}


def test_failed_retrieval_is_recorded_and_no_context_is_invented(agent, policy, model, store):
    class Broken:
        def search(self, query, limit=3):
            raise OSError("search index unavailable")

    engine = Engine(agent, policy, model, store, knowledge=Broken())
    model.script(decision_reply("Refunds arrive within 5 business days."))
    state = engine.advance(new_run("How long does a refund take?"))

    assert store.steps[0].kind == StepKind.RETRIEVAL
    assert "search index unavailable" in store.steps[0].error
    assert state.context == []
    assert "Relevant knowledge" not in model.calls[0].messages[0]["content"]
    assert state.status == RunStatus.SUCCEEDED


def test_confident_answer_succeeds_with_totals_from_the_model_steps(engine, model, store, state):
    model.script(
        decision_reply(
            "Order 1077 is in transit.",
            confidence=0.95,
            tokens_in=1200,
            tokens_out=80,
            tokens_cached=200,
        )
    )
    state = engine.advance(state)

    assert state.status == RunStatus.SUCCEEDED
    assert state.reason == Reason.NONE
    assert state.answer == "Order 1077 is in transit."
    assert store.kinds() == ["retrieval", "model", "final"]
    final = store.steps[-1]
    assert final.result == {"answer": "Order 1077 is in transit."}
    model_step = store.steps[1]
    assert (model_step.model, model_step.args["tier"], model_step.confidence) == (
        SMALL,
        "small",
        0.95,
    )
    expected_cost = PRICES[SMALL].cost(1200, 200, 80)
    assert expected_cost > 0
    assert model_step.usage == Usage(
        tokens_in=1200, tokens_out=80, tokens_cached=200, cost_usd=expected_cost
    )
    assert state.usage == model_step.usage
    assert state.step_count == len(store.steps) == 3
    assert [s.index for s in store.steps] == [0, 1, 2]
    assert store.escalations == []


def test_totals_are_the_sum_of_all_model_steps(engine, model, store, state):
    model.script(
        tool_call_reply("lookup_order", {"order_id": "1077"}, tokens_in=900, tokens_out=30),
        decision_reply("It is on its way.", tokens_in=1500, tokens_out=40, tokens_cached=900),
    )
    state = engine.advance(state)

    assert state.status == RunStatus.SUCCEEDED
    total = Usage()
    for step in store.steps_of(StepKind.MODEL):
        total.add(step.usage)
    assert len(store.steps_of(StepKind.MODEL)) == 2
    assert state.usage == total
    assert state.usage.cost_usd == PRICES[SMALL].cost(900, 0, 30) + PRICES[SMALL].cost(
        1500, 900, 40
    )
    assert store.last_checkpoint().usage == total


def test_tool_call_runs_once_and_its_result_is_fed_back(engine, model, store, state):
    model.script(
        tool_call_reply("lookup_order", {"order_id": "1077"}, call_id="call_a"),
        decision_reply("Order 1077 is in transit."),
    )
    state = engine.advance(state)

    assert state.status == RunStatus.SUCCEEDED
    assert store.kinds() == ["retrieval", "model", "tool", "model", "final"]
    tool_step = store.steps[2]
    order = _orders()["1077"]
    assert (tool_step.name, tool_step.args, tool_step.error) == (
        "lookup_order",
        {"order_id": "1077"},
        "",
    )
    assert tool_step.result == order
    assert [row["tool"] for row in store.ledger.values()] == ["lookup_order"]
    assert next(iter(store.ledger.values()))["status"] == "succeeded"

    assert len(model.calls) == 2
    assistant, tool_msg = model.calls[1].messages[-2:]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"][0]["id"] == "call_a"
    assert assistant["tool_calls"][0]["function"]["name"] == "lookup_order"
    assert tool_msg["role"] == "tool"
    assert tool_msg["tool_call_id"] == "call_a"
    assert json.loads(tool_msg["content"]) == {"ok": True, "result": order}


def test_model_sees_the_tool_schemas_and_output_limit(engine, model, policy, state):
    model.script(decision_reply("Hello."))
    engine.advance(state)
    call = model.calls[0]
    names = {t["function"]["name"] for t in call.tools}
    assert names == {"search_policy", "lookup_order", "issue_refund"}
    assert all("confidence" in t["function"]["parameters"]["required"] for t in call.tools)
    assert call.max_tokens == policy.max_output_tokens


def test_failing_tool_is_recorded_and_escalated_without_invented_output(
    engine, model, store, state
):
    model.script(
        tool_call_reply("lookup_order", {"order_id": "9999"}, call_id="call_f"),
        decision_reply("Your order is fine."),  # must never be asked for
    )
    state = engine.advance(new_run("Where is my order 9999?"))

    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.TOOL_FAILED
    tool_step = store.steps_of(StepKind.TOOL)[0]
    assert tool_step.result is None
    assert tool_step.error == "order service unavailable (HTTP 503)"
    assert len(model.calls) == 1 and model.remaining == 1
    assert json.loads(state.messages[-1]["content"]) == {
        "ok": False,
        "error": "order service unavailable (HTTP 503)",
    }
    assert [e.reason for e in store.escalations] == [Reason.TOOL_FAILED]
    assert "order service unavailable" in store.escalations[0].question
    assert next(iter(store.ledger.values()))["status"] == "failed"
    assert store.kinds()[-1] == "escalation"


def test_a_crash_between_the_failed_tool_step_and_its_escalation_escalates_on_resume(
    agent, policy
):
    store = InMemoryStore(crash_after_commit=3)  # retrieval, model, the failed lookup
    model = ScriptedModel().script(
        tool_call_reply("lookup_order", {"order_id": "9999"}, call_id="call_f"))
    with pytest.raises(SimulatedCrash):
        Engine(agent, policy, model, store).advance(new_run("Where is my order 9999?"))
    assert store.kinds() == ["retrieval", "model", "tool"]

    fresh_model = ScriptedModel().script(decision_reply("Your order is fine."))  # never asked
    state = Engine(agent, policy, fresh_model, store).advance(store.last_checkpoint())
    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.TOOL_FAILED
    assert fresh_model.calls == [] and state.pending_call is None
    [esc] = store.escalations
    assert esc.question.startswith("lookup_order failed: order service unavailable (HTTP 503)")
    assert store.kinds() == ["retrieval", "model", "tool", "escalation"]


def test_unknown_tool_is_a_failed_step_and_the_loop_continues(engine, model, store, state):
    model.script(
        tool_call_reply("cancel_everything", {"order_id": "1077"}, call_id="call_u"),
        decision_reply("Order 1077 is in transit."),
    )
    state = engine.advance(state)

    assert state.status == RunStatus.SUCCEEDED
    assert store.kinds() == ["retrieval", "model", "tool", "model", "final"]
    tool_step = store.steps[2]
    assert tool_step.name == "cancel_everything"
    assert tool_step.result is None
    assert "unknown tool 'cancel_everything'" in tool_step.error
    assert store.escalations == []
    assert store.ledger == {}
    tool_msg = model.calls[1].messages[-1]
    assert tool_msg["tool_call_id"] == "call_u"
    assert json.loads(tool_msg["content"]) == {
        "ok": False,
        "error": "unknown tool 'cancel_everything'",
    }


def test_zero_time_slice_stops_after_retrieval_and_a_later_advance_finishes(
    agent, policy, model, store, clock, state
):
    engine = Engine(agent, policy, model, store, clock=clock)
    state = engine.advance(state, slice_seconds=0)

    assert state.status == RunStatus.RUNNING
    assert store.kinds() == ["retrieval"]
    assert model.calls == []

    model.script(decision_reply("Order 1077 is in transit."))
    resumed = store.last_checkpoint()
    assert resumed.status == RunStatus.RUNNING
    state = Engine(agent, policy, model, store, clock=clock).advance(resumed)
    assert state.status == RunStatus.SUCCEEDED
    assert store.kinds() == ["retrieval", "model", "final"]


def test_time_slice_ends_between_steps_and_loses_nothing(agent, policy, store, clock, state):
    model = ScriptedModel(on_call=lambda _call: clock.advance(20))
    model.script(
        tool_call_reply("lookup_order", {"order_id": "1077"}),
        decision_reply("Order 1077 is in transit."),
    )
    state = Engine(agent, policy, model, store, clock=clock).advance(state, slice_seconds=10)
    assert state.status == RunStatus.RUNNING
    assert store.kinds() == ["retrieval", "model"]  # stopped before executing the tool

    state = Engine(agent, policy, model, store, clock=clock).advance(
        store.last_checkpoint(), slice_seconds=1000
    )
    assert state.status == RunStatus.SUCCEEDED
    assert store.kinds() == ["retrieval", "model", "tool", "model", "final"]


def test_advancing_an_ended_or_waiting_run_does_nothing(engine, model, store, state):
    model.script(decision_reply("Done.", confidence=0.9))
    engine.advance(state)
    commits = store.commits

    done = store.last_checkpoint()
    assert engine.advance(done).status == RunStatus.SUCCEEDED
    assert store.commits == commits and len(model.calls) == 1

    model.script(decision_reply(None, question="Which order?"))
    waiting = engine.advance(new_run(run_id="run-2"))
    assert waiting.status == RunStatus.WAITING_HUMAN
    commits = store.commits
    again = engine.advance(store.last_checkpoint())
    assert again.status == RunStatus.WAITING_HUMAN
    assert again.reason == Reason.LOW_CONFIDENCE
    assert store.commits == commits and len(model.calls) == 2


def test_a_confidence_outside_zero_to_one_is_not_confidence():
    from agentdesk.runtime.llm import InvalidOutput, ModelReply, ToolCallRequest
    from agentdesk.runtime.proposals import proposal_from

    wild = ModelReply(model="m", content='{"answer": "ok", "question": null, "confidence": 1077}')
    with pytest.raises(InvalidOutput):  # a final decision is repaired, then fails
        proposal_from(wild, "small")
    call = ToolCallRequest(id="c1", name="lookup_order",
                           arguments='{"order_id": "1077", "confidence": 1077}')
    proposal = proposal_from(ModelReply(model="m", content=None, tool_calls=[call]), "small")
    assert proposal.call is not None and proposal.confidence == 0.0  # → a human looks
