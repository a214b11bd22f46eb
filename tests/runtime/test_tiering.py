"""Tiering and questions: small model first, large when unsure, a human when both are."""

from __future__ import annotations

from agentdesk.runtime.loop import FINAL_ANSWER, Engine
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.state import HumanInput

from .conftest import LARGE, PRICES, SMALL, new_run
from .fakes import decision_reply, tool_call_reply


def test_low_confidence_small_answer_is_retried_on_the_large_model(engine, model, store, state):
    model.script(decision_reply("Maybe shipped?", confidence=0.4, tokens_in=800), model=SMALL)
    model.script(
        decision_reply("Order 1077 is in transit.", confidence=0.92, tokens_in=800), model=LARGE
    )
    state = engine.advance(state)

    assert state.status == RunStatus.SUCCEEDED
    assert state.answer == "Order 1077 is in transit."
    assert [c.model for c in model.calls] == [SMALL, LARGE]
    assert model.calls[0].messages == model.calls[1].messages  # same question, higher tier
    small, large = store.steps_of(StepKind.MODEL)
    assert (small.model, small.args["tier"], small.confidence) == (SMALL, "small", 0.4)
    assert (large.model, large.args["tier"], large.confidence) == (LARGE, "large", 0.92)
    assert store.kinds() == ["retrieval", "model", "model", "final"]
    assert state.usage.cost_usd == PRICES[SMALL].cost(800, 0, 20) + PRICES[LARGE].cost(800, 0, 20)
    assert state.usage.tokens_in == 1600


def test_a_confident_small_answer_never_reaches_the_large_model(engine, model, state):
    model.script(decision_reply("In transit.", confidence=0.7), model=SMALL)  # == threshold
    model.script(decision_reply("unused"), model=LARGE)
    engine.advance(state)
    assert [c.model for c in model.calls] == [SMALL]


def test_low_confidence_on_both_tiers_escalates_with_the_proposed_answer(
    agent, policy, model, store, state
):
    model.script(decision_reply("Probably shipped.", confidence=0.3), model=SMALL)
    model.script(decision_reply("It shipped on Monday.", confidence=0.5), model=LARGE)
    state = Engine(agent, policy, model, store).advance(state)

    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.LOW_CONFIDENCE
    assert store.kinds() == ["retrieval", "model", "model", "escalation"]
    [esc] = store.escalations
    assert esc.reason == Reason.LOW_CONFIDENCE
    assert esc.proposed_tool == FINAL_ANSWER
    assert esc.proposed_args == {"answer": "It shipped on Monday."}
    assert esc.confidence == 0.5
    assert [d["source"] for d in esc.context] == [d["source"] for d in state.context]

    # the operator approves the proposed answer: it is sent as is, no model call
    resumed = store.last_checkpoint()
    resumed.human_input = HumanInput(decision="approve", operator="op")
    state = Engine(agent, policy, model, store).advance(resumed)
    assert state.status == RunStatus.SUCCEEDED
    assert state.answer == "It shipped on Monday."
    assert len(model.calls) == 2
    assert store.kinds()[-2:] == ["human", "final"]


def test_low_confidence_tool_call_on_both_tiers_escalates_before_running(
    engine, model, store, state
):
    model.script(tool_call_reply("lookup_order", {"order_id": "1077"}, confidence=0.2), model=SMALL)
    model.script(tool_call_reply("lookup_order", {"order_id": "1077"}, confidence=0.4), model=LARGE)
    state = engine.advance(state)

    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.LOW_CONFIDENCE
    [esc] = store.escalations
    assert (esc.proposed_tool, esc.proposed_args, esc.confidence) == (
        "lookup_order",
        {"order_id": "1077"},
        0.4,
    )
    assert store.ledger == {}
    assert state.pending_call is not None and state.pending_call.tool == "lookup_order"


def test_a_tool_call_without_confidence_counts_as_unsure(engine, model, store, state):
    model.script(tool_call_reply("lookup_order", {"order_id": "1077"}, confidence=None))
    model.script(tool_call_reply("lookup_order", {"order_id": "1077"}, confidence=0.9))
    model.script(decision_reply("In transit."))
    state = engine.advance(state)
    # the large model decided, so the run stays on it until a confident streak
    assert [c.model for c in model.calls] == [SMALL, LARGE, LARGE]
    assert state.status == RunStatus.SUCCEEDED


def test_a_confident_large_streak_steps_back_down(engine, model, store, state, policy):
    policy.downgrade_after = 2
    model.script(tool_call_reply("lookup_order", {"order_id": "1077"}, confidence=0.3))
    model.script(tool_call_reply("lookup_order", {"order_id": "1077"}, confidence=0.9))
    model.script(tool_call_reply("search_policy", {"query": "shipping"}, confidence=0.9))
    model.script(decision_reply("In transit."))
    state = engine.advance(state)
    assert [c.model for c in model.calls] == [SMALL, LARGE, LARGE, SMALL]
    whys = [s.args["why"] for s in store.steps_of(StepKind.MODEL)]
    assert whys[0] == "small model unsure"
    assert "stepping back down" in whys[2]
    assert state.status == RunStatus.SUCCEEDED


def test_question_escalates_and_the_operator_reply_reaches_the_model(agent, policy, model, store):
    model.script(decision_reply(None, question="Which order do you mean?", confidence=0.9))
    state = Engine(agent, policy, model, store).advance(new_run("I want my money back"))

    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.LOW_CONFIDENCE
    [esc] = store.escalations
    assert esc.question == "Which order do you mean?"
    assert esc.proposed_tool == ""
    assert len(model.calls) == 1

    resumed = store.last_checkpoint()
    resumed.human_input = HumanInput(decision="reply", message="order 1042", operator="op")
    model.script(
        tool_call_reply("lookup_order", {"order_id": "1042"}),
        decision_reply("Order 1042 was delivered; a refund can be requested."),
    )
    state = Engine(agent, policy, model, store).advance(resumed)

    assert model.calls[1].messages[-1] == {"role": "user", "content": "Operator: order 1042"}
    human = store.steps_of(StepKind.HUMAN)[0]
    assert human.name == "reply"
    assert human.args == {"operator": "op", "message": "order 1042"}
    assert state.human_input is None
    assert state.status == RunStatus.SUCCEEDED
    assert state.reason == Reason.NONE
    assert store.kinds() == [
        "retrieval",
        "model",
        "escalation",
        "human",
        "model",
        "tool",
        "model",
        "final",
    ]
    assert [s.index for s in store.steps] == list(range(8))
