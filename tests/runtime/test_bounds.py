"""Run bounds are checked before each model call, against the worst case of that call."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.state import HumanInput, Usage
from agentdesk.runtime.tokens import count_prompt

from .conftest import PRICES, SMALL
from .fakes import ScriptedModel, decision_reply, tool_call_reply


def _searches(n: int) -> list:
    return [tool_call_reply("search_policy", {"query": f"refund rule {i}"}) for i in range(n)]


def _assert_failed_before_calling(state, store, model, reason: Reason, calls: int) -> None:
    assert state.status == RunStatus.FAILED
    assert state.reason == reason
    assert len(model.calls) == calls  # nothing was asked after the bound
    assert len(store.steps_of(StepKind.MODEL)) == calls
    final = store.steps[-1]
    assert (final.kind, final.name, final.error) == ("final", "failed", f"{reason} reached")
    assert store.last_checkpoint().status == RunStatus.FAILED


def _reserved(policy, model, state, agent) -> int:
    """Prompt tokens the pre-call check holds for the run's next call."""
    count = count_prompt(policy.profile(model), state.messages, agent.tools.openai_schemas())
    return count.reserve(state.prompt_token_ratios.get(model, 1.0))


def _after_retrieval(engine, state):
    state = engine.advance(state, slice_seconds=0)
    assert state.status == RunStatus.RUNNING
    return state


def test_step_limit(engine, model, store, policy, state):
    policy.max_steps = 3  # retrieval, model, tool
    model.script(tool_call_reply("lookup_order", {"order_id": "1077"}), decision_reply("unused"))
    state = engine.advance(state)
    _assert_failed_before_calling(state, store, model, Reason.STEP_LIMIT, calls=1)
    assert state.step_count == 4
    assert model.remaining == 1


@pytest.mark.parametrize(("slack", "allowed"), [(-1, False), (0, True)])
def test_token_limit_counts_the_worst_case_of_the_next_call(
    engine, model, store, policy, agent, state, slack, allowed
):
    state = _after_retrieval(engine, state)
    prompt = _reserved(policy, SMALL, state, agent)
    policy.max_tokens = prompt + policy.max_output_tokens + slack
    model.script(decision_reply("Done.", tokens_in=10, tokens_out=5))  # would have fitted
    state = engine.advance(state)
    if allowed:
        assert state.status == RunStatus.SUCCEEDED
    else:
        _assert_failed_before_calling(state, store, model, Reason.TOKEN_LIMIT, calls=0)


def test_token_totals_never_exceed_the_limit(agent, policy, store, clock, state):
    policy.max_steps = 200
    policy.no_progress_limit = 1000  # the searches find the same documents; not a loop here
    policy.max_output_tokens = 200
    policy.max_tokens = 60_000
    model = ScriptedModel(prompt_usage=True).script(*_searches(40))
    state = Engine(agent, policy, model, store, clock=clock).advance(state, slice_seconds=1e9)

    calls = len(model.calls)
    assert calls >= 3  # the bound was reached by accumulation, not at once
    _assert_failed_before_calling(state, store, model, Reason.TOKEN_LIMIT, calls=calls)
    assert state.usage.total_tokens <= policy.max_tokens
    total = Usage()
    for step in store.steps_of(StepKind.MODEL):
        total.add(step.usage)
    assert total == state.usage
    # the refused call could have crossed the limit in the worst case
    next_prompt = _reserved(policy, SMALL, state, agent)
    assert state.usage.total_tokens + next_prompt + policy.max_output_tokens > policy.max_tokens


@pytest.mark.parametrize(("slack", "allowed"), [(Decimal("-0.00000001"), False), (0, True)])
def test_cost_limit_counts_the_worst_case_of_the_next_call(
    engine, model, store, policy, agent, state, slack, allowed
):
    state = _after_retrieval(engine, state)
    prompt = _reserved(policy, SMALL, state, agent)
    worst = PRICES[SMALL].cost(prompt, 0, policy.max_output_tokens)  # uncached in, full out
    assert worst > 0
    policy.max_cost_usd = worst + slack
    model.script(decision_reply("Done.", tokens_in=10, tokens_out=5))
    state = engine.advance(state)
    if allowed:
        assert state.status == RunStatus.SUCCEEDED
    else:
        _assert_failed_before_calling(state, store, model, Reason.COST_LIMIT, calls=0)


def test_cost_totals_never_exceed_the_ceiling(agent, policy, store, clock, state):
    policy.max_steps = 200
    policy.no_progress_limit = 1000  # the searches find the same documents; not a loop here
    policy.max_cost_usd = Decimal("0.006")
    policy.max_tokens = 1_000_000  # the ceiling under test is the cost one
    model = ScriptedModel(prompt_usage=True).script(*_searches(40))
    state = Engine(agent, policy, model, store, clock=clock).advance(state, slice_seconds=1e9)

    calls = len(model.calls)
    assert calls >= 3
    _assert_failed_before_calling(state, store, model, Reason.COST_LIMIT, calls=calls)
    assert 0 < state.usage.cost_usd <= policy.max_cost_usd
    assert state.usage.cost_usd == sum(s.usage.cost_usd for s in store.steps_of(StepKind.MODEL))


def test_time_limit(agent, policy, store, clock, state):
    policy.max_seconds = 300
    model = ScriptedModel(on_call=lambda _call: clock.advance(120)).script(*_searches(10))
    state = Engine(agent, policy, model, store, clock=clock).advance(state, slice_seconds=1e9)

    _assert_failed_before_calling(state, store, model, Reason.TIME_LIMIT, calls=3)
    assert state.active_seconds == pytest.approx(360)


def test_time_waiting_for_a_human_does_not_count(agent, policy, store, clock, state):
    policy.max_seconds = 300
    model = ScriptedModel().script(decision_reply(None, question="Which order?"))
    state = Engine(agent, policy, model, store, clock=clock).advance(state)
    assert state.status == RunStatus.WAITING_HUMAN

    clock.advance(3600)  # the operator takes an hour
    resumed = store.last_checkpoint()
    resumed.human_input = HumanInput(decision="reply", message="1077", operator="op")
    model.script(decision_reply("Order 1077 is in transit."))
    state = Engine(agent, policy, model, store, clock=clock).advance(resumed)
    assert state.status == RunStatus.SUCCEEDED
    assert state.active_seconds < 1
