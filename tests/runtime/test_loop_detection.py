"""Loop detection: the same call again and again, or tool results that bring nothing new."""

from __future__ import annotations

import pytest

from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.proposals import call_signature
from agentdesk.runtime.state import HumanInput, ToolCallProposal

from .conftest import new_run
from .fakes import decision_reply, tool_call_reply

LOOKUP = {"order_id": "1077"}


def _lookups(n: int, args=LOOKUP) -> list:
    return [tool_call_reply("lookup_order", args) for _ in range(n)]


def _searches(*queries: str) -> list:
    return [tool_call_reply("search_policy", {"query": q}) for q in queries]


def _tools_run(store) -> list[str]:
    return [row["tool"] for row in store.ledger.values()]


def _resume(agent, policy, model, store, decision: str):
    resumed = store.last_checkpoint()
    resumed.human_input = HumanInput(decision=decision, operator="op")
    return Engine(agent, policy, model, store).advance(resumed)


# -- the same call, over and over ----------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_the_same_call_more_than_the_limit_fails_as_a_loop(engine, model, store, policy, limit):
    policy.loop_repeat_limit = limit
    model.script(*_lookups(limit + 1), decision_reply("unused"))
    state = engine.advance(new_run())

    assert state.status == RunStatus.FAILED
    assert state.reason == Reason.LOOP_DETECTED
    assert len(model.calls) == limit + 1
    assert _tools_run(store) == ["lookup_order"] * limit  # the repeat itself never ran
    assert len(store.steps_of(StepKind.TOOL)) == limit
    final = store.steps[-1]
    assert (final.kind, final.name, final.error) == ("final", "failed", "loop_detected reached")
    assert store.last_checkpoint().status == RunStatus.FAILED


def test_the_same_call_up_to_the_limit_is_fine(engine, model, store, policy):
    policy.loop_repeat_limit = 3
    model.script(*_lookups(3), decision_reply("Order 1077 is in transit."))
    state = engine.advance(new_run())
    assert state.status == RunStatus.SUCCEEDED
    assert _tools_run(store) == ["lookup_order"] * 3


def test_the_same_tool_with_other_arguments_is_not_a_repeat(engine, model, store, policy):
    policy.loop_repeat_limit = 1
    model.script(
        tool_call_reply("lookup_order", {"order_id": "1077"}),
        tool_call_reply("lookup_order", {"order_id": "1001"}),
        tool_call_reply("lookup_order", {"order_id": "1042"}),
        decision_reply("Done."),
    )
    state = engine.advance(new_run())
    assert state.status == RunStatus.SUCCEEDED
    assert _tools_run(store) == ["lookup_order"] * 3


def test_the_confidence_is_not_part_of_the_call(engine, model, store, policy):
    policy.loop_repeat_limit = 1
    model.script(
        tool_call_reply("lookup_order", LOOKUP, confidence=0.8),
        tool_call_reply("lookup_order", LOOKUP, confidence=0.95),
    )
    state = engine.advance(new_run())
    assert state.reason == Reason.LOOP_DETECTED
    assert _tools_run(store) == ["lookup_order"]


def test_a_repeated_call_escalates_when_the_policy_says_so(engine, model, store, policy):
    policy.loop_repeat_limit = 2
    policy.on_bound = "escalate"
    model.script(*_lookups(3))
    state = engine.advance(new_run())

    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.LOOP_DETECTED
    [esc] = store.escalations
    assert esc.reason == Reason.LOOP_DETECTED
    assert (esc.proposed_tool, esc.proposed_args) == ("lookup_order", LOOKUP)
    assert "loop detected" in esc.question
    assert state.pending_call is not None and state.pending_call.tool == "lookup_order"
    assert _tools_run(store) == ["lookup_order"] * 2
    assert store.kinds()[-1] == "escalation"


def test_extend_budget_after_a_loop_clears_the_counters_and_runs_the_call(
    agent, policy, model, store
):
    policy.loop_repeat_limit = 2
    policy.on_bound = "escalate"
    model.script(*_lookups(3))
    Engine(agent, policy, model, store).advance(new_run())
    sig = call_signature(ToolCallProposal(call_id="x", tool="lookup_order", args=LOOKUP))
    assert store.last_checkpoint().call_counts[sig] == 3

    model.script(decision_reply("Order 1077 is in transit."))
    state = _resume(agent, policy, model, store, "extend_budget")

    assert state.status == RunStatus.SUCCEEDED
    assert state.answer == "Order 1077 is in transit."
    assert _tools_run(store) == ["lookup_order"] * 3  # the held call ran, no model call for it
    assert len(model.calls) == 4
    assert state.call_counts == {sig: 1}
    assert store.kinds()[-5:] == ["escalation", "human", "tool", "model", "final"]
    assert store.steps_of(StepKind.HUMAN)[0].name == "extend_budget"


def test_after_extend_budget_the_limit_counts_again_from_zero(agent, policy, model, store):
    policy.loop_repeat_limit = 1
    policy.on_bound = "escalate"
    model.script(*_lookups(2))
    Engine(agent, policy, model, store).advance(new_run())

    model.script(*_lookups(1))  # the model repeats the call once more: a loop again
    state = _resume(agent, policy, model, store, "extend_budget")
    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.LOOP_DETECTED
    assert len(store.escalations) == 2
    assert _tools_run(store) == ["lookup_order"] * 2


# -- results that bring nothing new --------------------------------------------------------


def test_identical_results_in_a_row_are_a_loop(engine, model, store, policy):
    policy.no_progress_limit = 3
    # different queries, the same documents each time
    model.script(*_searches("refund rule", "refunds rule", "refund rules", "refunds rules"),
                 decision_reply("unused"))
    state = engine.advance(new_run("How do refunds work?"))

    assert state.status == RunStatus.FAILED
    assert state.reason == Reason.LOOP_DETECTED
    tools = store.steps_of(StepKind.TOOL)
    assert len(tools) == 4  # one new result, then three that brought nothing new
    assert all(t.result == tools[0].result for t in tools)
    assert len(model.calls) == 4
    assert model.remaining == 1
    assert store.kinds()[-2:] == ["tool", "final"]


def test_a_new_result_resets_the_count(engine, model, store, policy):
    policy.no_progress_limit = 3
    model.script(
        *_searches("refund rule", "refunds rule", "refund rules"),  # new, stale, stale
        tool_call_reply("lookup_order", LOOKUP),  # something new
        *_searches("refunds rules", "Refund rule"),  # stale, stale
        decision_reply("Refunds take 5 days; order 1077 is in transit."),
    )
    state = engine.advance(new_run("How do refunds work?"))

    assert state.status == RunStatus.SUCCEEDED
    assert len(store.steps_of(StepKind.TOOL)) == 6
    assert state.stale_results == 2


def test_a_stale_result_escalates_when_the_policy_says_so_and_extend_budget_goes_on(
    agent, policy, model, store
):
    policy.no_progress_limit = 2
    policy.on_bound = "escalate"
    model.script(*_searches("refund rule", "refunds rule", "refund rules"))
    state = Engine(agent, policy, model, store).advance(new_run("How do refunds work?"))

    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.LOOP_DETECTED
    [esc] = store.escalations
    assert esc.proposed_tool == ""  # the calls were made; there is nothing held back
    assert state.stale_results == 2

    model.script(*_searches("refunds rules"), decision_reply("Refunds take 5 days."))
    state = _resume(agent, policy, model, store, "extend_budget")
    assert state.status == RunStatus.SUCCEEDED
    assert state.stale_results == 1  # counted again from zero
    assert len(store.steps_of(StepKind.TOOL)) == 4
