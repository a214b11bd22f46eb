"""Model failures end the run with a reason; bad output gets exactly one repair attempt."""

from __future__ import annotations

import pytest

from agentdesk.runtime.llm import ModelError
from agentdesk.runtime.loop import REPAIR_PROMPT
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind

from .conftest import SMALL
from .fakes import decision_reply, raw_reply, tool_call_reply

REPAIR_START = REPAIR_PROMPT.split("(")[0]


def test_model_error_fails_the_run_with_a_failed_model_step(engine, model, store, state):
    model.script(ModelError("sim-small: HTTP 503: overloaded"), decision_reply("unused"))
    state = engine.advance(state)

    assert state.status == RunStatus.FAILED
    assert state.reason == Reason.MODEL_FAILED
    assert store.kinds() == ["retrieval", "model", "final"]
    failed = store.steps[1]
    assert (failed.model, failed.args["tier"]) == (SMALL, "small")
    assert failed.error == "sim-small: HTTP 503: overloaded"
    assert store.steps[-1].error == "sim-small: HTTP 503: overloaded"
    assert len(model.calls) == 1


@pytest.mark.parametrize(
    "content",
    ["Sure, your refund is on its way!", '{"answer": "yes"}', None, '{"answer": 1, "q": 2}'],
)
def test_invalid_output_gets_one_repair_then_succeeds(engine, model, store, state, content):
    model.script(raw_reply(content), decision_reply("Order 1077 is in transit."))
    state = engine.advance(state)

    assert state.status == RunStatus.SUCCEEDED
    assert state.answer == "Order 1077 is in transit."
    assert len(model.calls) == 2
    assistant, repair = model.calls[1].messages[-2:]
    assert assistant == {"role": "assistant", "content": content or ""}
    assert repair["role"] == "user"
    assert repair["content"].startswith(REPAIR_START)
    assert model.calls[1].messages[:-2] == model.calls[0].messages
    bad, good = store.steps_of(StepKind.MODEL)
    assert "not a valid decision" in bad.error
    assert bad.result == {"content": content}
    assert good.error == ""


def test_invalid_output_twice_fails_the_run(engine, model, store, state):
    model.script(raw_reply("not json"), raw_reply("still not json"), decision_reply("unused"))
    state = engine.advance(state)

    assert state.status == RunStatus.FAILED
    assert state.reason == Reason.INVALID_OUTPUT
    assert len(model.calls) == 2
    assert [bool(s.error) for s in store.steps_of(StepKind.MODEL)] == [True, True]
    assert store.kinds() == ["retrieval", "model", "model", "final"]
    assert store.ledger == {}


@pytest.mark.parametrize("arguments", ['{"order_id": "1077"', "[1, 2]", "null"])
def test_tool_call_arguments_that_are_not_a_json_object_are_invalid_output(
    engine, model, store, state, arguments
):
    bad = tool_call_reply("lookup_order", raw_arguments=arguments)
    model.script(bad, bad, decision_reply("unused"))
    state = engine.advance(state)

    assert state.status == RunStatus.FAILED
    assert state.reason == Reason.INVALID_OUTPUT
    assert len(model.calls) == 2
    assert model.calls[1].messages[-1]["content"].startswith(REPAIR_START)
    assert all("arguments of lookup_order" in s.error for s in store.steps_of(StepKind.MODEL))
    assert store.ledger == {}
    assert store.steps_of(StepKind.TOOL) == []


def test_bad_tool_arguments_are_repaired_by_a_valid_call(engine, model, store, state):
    model.script(
        tool_call_reply("lookup_order", raw_arguments="{order_id: 1077}"),
        tool_call_reply("lookup_order", {"order_id": "1077"}),
        decision_reply("Order 1077 is in transit."),
    )
    state = engine.advance(state)
    assert state.status == RunStatus.SUCCEEDED
    assert len(store.steps_of(StepKind.TOOL)) == 1
