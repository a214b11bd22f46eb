"""Money fails closed: a model without a price is never called (the run asks an admin to
price it), and a reply that does not say what it used is billed at the worst case that was
reserved for it — never at $0."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from agentdesk.runtime.budget import worst_case_cost
from agentdesk.runtime.loop import Engine
from agentdesk.runtime.options import OnBound
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.profiles import ModelProfile, Unpriced
from agentdesk.runtime.state import HumanInput, Usage
from agentdesk.runtime.tokens import count_prompt

from .conftest import LARGE, PRICES, SMALL, new_run
from .fakes import (
    DictResponseCache,
    InMemoryStore,
    InMemoryTeamBudget,
    ScriptedModel,
    decision_reply,
    tool_call_reply,
)


def _unpriced(name: str, **prices) -> ModelProfile:
    return ModelProfile(name=name, **prices)


# -- a model without a price is refused before the call ----------------------------------------


@pytest.mark.parametrize("on_bound", [OnBound.FAIL, OnBound.ESCALATE])
@pytest.mark.parametrize("profile", [
    None,  # not in the catalogue at all
    _unpriced(SMALL),  # in the catalogue, no prices
    _unpriced(SMALL, input_per_mtok=Decimal("0.15"), cached_input_per_mtok=Decimal("0.075")),
], ids=["missing", "no-prices", "no-output-price"])
def test_an_unpriced_model_is_never_called_and_the_run_asks_for_a_price(
    agent, policy, store, profile, on_bound
):
    if profile is None:
        del policy.models[SMALL]
    else:
        policy.models[SMALL] = profile
    policy.on_bound = on_bound  # not a bound: no budget a human extends would make it spend
    team = InMemoryTeamBudget("5")
    model = ScriptedModel().script(decision_reply("never asked"))
    state = Engine(agent, policy, model, store, team_budget=team).advance(new_run())

    assert model.calls == []
    assert team.events == []  # nothing reserved, nothing settled
    assert (state.status, state.reason) == (RunStatus.WAITING_HUMAN, Reason.MODEL_UNPRICED)
    assert state.usage == Usage()
    assert store.kinds() == ["retrieval", "escalation"]
    [escalation] = store.escalations
    assert escalation.reason == Reason.MODEL_UNPRICED
    assert "admin → Models → sim-small" in escalation.question
    assert "0 is a valid price" in escalation.question
    assert escalation.proposed_tool == ""


def test_a_price_of_zero_is_a_price(agent, policy, store):
    """Local models cost nothing, and say so explicitly."""
    policy.models[SMALL] = ModelProfile(name=SMALL, input_per_mtok=Decimal(0),
                                        cached_input_per_mtok=Decimal(0),
                                        output_per_mtok=Decimal(0))
    model = ScriptedModel().script(decision_reply("In transit.", tokens_in=900))
    state = Engine(agent, policy, model, store).advance(new_run())
    assert state.status == RunStatus.SUCCEEDED
    assert state.usage.cost_usd == 0 and state.usage.tokens_in == 900


def test_an_unpriced_large_model_stops_the_run_after_the_small_models_step(
    agent, policy, store
):
    policy.models[LARGE] = _unpriced(LARGE)
    model = ScriptedModel().script(decision_reply("Maybe?", confidence=0.3), model=SMALL)
    state = Engine(agent, policy, model, store).advance(new_run())

    assert [c.model for c in model.calls] == [SMALL]
    assert state.reason == Reason.MODEL_UNPRICED
    assert store.kinds() == ["retrieval", "model", "escalation"]
    assert "admin → Models → sim-large" in store.escalations[0].question
    assert state.usage.cost_usd == store.steps_of(StepKind.MODEL)[0].usage.cost_usd > 0


def test_once_priced_an_approval_lets_the_run_go_on(agent, policy, store):
    policy.models[SMALL] = _unpriced(SMALL)
    model = ScriptedModel().script(decision_reply("Order 1077 is in transit."))
    state = Engine(agent, policy, model, store).advance(new_run())
    assert state.reason == Reason.MODEL_UNPRICED

    repriced = policy.model_copy(update={"models": {**policy.models, SMALL: PRICES[SMALL]}})
    resumed = store.last_checkpoint()
    resumed.human_input = HumanInput(decision="approve", operator="op")
    state = Engine(agent, repriced, model, store).advance(resumed)
    assert state.status == RunStatus.SUCCEEDED
    assert state.usage.cost_usd > 0


def test_a_cached_reply_of_an_unpriced_model_is_not_served_either(agent, policy):
    """Refused before the cache: once unpriced, a model takes no part in a run at all."""
    cache = DictResponseCache()
    model = ScriptedModel().script(decision_reply("In transit."))
    Engine(agent, policy, model, InMemoryStore(), cache=cache).advance(new_run(run_id="a"))
    assert len(cache.entries) == 1

    unpriced = policy.model_copy(update={"models": {**policy.models, SMALL: _unpriced(SMALL)}})
    state = Engine(agent, unpriced, model, InMemoryStore(), cache=cache).advance(
        new_run(run_id="b"))
    assert state.reason == Reason.MODEL_UNPRICED


def test_the_worst_case_of_an_unpriced_model_is_an_error_not_zero(policy):
    policy.models[SMALL] = _unpriced(SMALL)
    with pytest.raises(Unpriced):
        worst_case_cost(policy, SMALL, 1000)


# -- a reply without usage is billed at its reservation ---------------------------------------


def _no_usage(reply):
    return dataclasses.replace(reply, tokens_in=0, tokens_out=0, usage_reported=False)


def test_a_reply_without_usage_is_billed_at_the_worst_case_reserved_for_it(agent, policy):
    store, team = InMemoryStore(), InMemoryTeamBudget("5")
    model = ScriptedModel().script(_no_usage(decision_reply("Order 1077 is in transit.")))
    state = Engine(agent, policy, model, store, team_budget=team).advance(new_run())
    assert state.status == RunStatus.SUCCEEDED

    [step] = store.steps_of(StepKind.MODEL)
    call = model.calls[0]
    reserved = count_prompt(policy.profile(SMALL), call.messages, call.tools).reserve()
    worst = worst_case_cost(policy, SMALL, reserved)
    assert step.args["usage_missing"] is True
    assert step.args["prompt_tokens_reserved"] == reserved
    assert "prompt_tokens_ratio" not in step.args  # nothing reported: nothing learned
    assert (step.usage.tokens_in, step.usage.tokens_out) == (reserved, policy.max_output_tokens)
    assert step.usage.cost_usd == worst > 0
    assert state.usage.cost_usd == worst
    assert state.prompt_token_ratios == {}
    assert team.events == [("reserve", worst), ("settle", worst, worst)]


def test_replies_without_usage_still_stop_at_the_cost_ceiling(agent, policy, store):
    policy.max_cost_usd = Decimal("0.004")
    policy.no_progress_limit = 1000
    replies = [_no_usage(tool_call_reply("search_policy", {"query": f"rule {i}"}))
               for i in range(40)]
    model = ScriptedModel().script(*replies)
    state = Engine(agent, policy, model, store).advance(new_run(), slice_seconds=1e9)

    assert state.reason == Reason.COST_LIMIT
    assert len(model.calls) >= 2
    assert 0 < state.usage.cost_usd <= policy.max_cost_usd
    assert all(s.args["usage_missing"] for s in store.steps_of(StepKind.MODEL))


def test_a_reply_naming_a_snapshot_of_the_model_is_priced_as_the_model_asked(
    agent, policy, store
):
    """Endpoints answer with dated names (gpt-4o → gpt-4o-2024-08-06): not a $0 model."""
    model = ScriptedModel().script(
        decision_reply("In transit.", model="sim-small-2026-01-01", tokens_in=900, tokens_out=30))
    state = Engine(agent, policy, model, store).advance(new_run())
    assert state.usage.cost_usd == PRICES[SMALL].cost(900, 0, 30)
    assert store.steps_of(StepKind.MODEL)[0].model == "sim-small-2026-01-01"
    assert state.prompt_token_ratios.keys() == {SMALL}
