"""Around each model call: the response cache, and the team's daily budget (reserve, settle)."""

from __future__ import annotations

from decimal import Decimal

from agentdesk.runtime import model_calls
from agentdesk.runtime.budget import worst_case_cost
from agentdesk.runtime.llm import ModelError
from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.state import Usage
from agentdesk.runtime.tokens import count_prompt

from .conftest import LARGE, PRICES, SMALL, new_run
from .fakes import (
    DictResponseCache,
    FakeClock,
    InMemoryTeamBudget,
    ScriptedModel,
    decision_reply,
    tool_call_reply,
)

QUESTION = "Where is my order 1077?"


def _engine(agent, policy, model, store, **ports) -> Engine:
    return Engine(agent, policy, model, store, **ports)


# -- response cache ------------------------------------------------------------------------


def test_the_second_identical_request_is_served_from_the_cache(agent, policy, model, store):
    cache = DictResponseCache()
    model.script(decision_reply("Order 1077 is in transit.", tokens_in=900, tokens_out=40))
    first = _engine(agent, policy, model, store, cache=cache).advance(new_run(QUESTION, "run-1"))
    assert first.status == RunStatus.SUCCEEDED
    assert first.usage.cost_usd > 0
    assert [ttl for _, ttl in cache.sets] == [policy.cache_ttl_seconds]
    assert "cache_hit" not in store.steps_of(StepKind.MODEL)[0].args

    second_store = type(store)()
    second = _engine(agent, policy, model, second_store, cache=cache).advance(
        new_run(QUESTION, "run-2")
    )

    assert len(model.calls) == 1  # nothing scripted for a second call: it would have failed
    assert second.status == RunStatus.SUCCEEDED
    assert second.answer == "Order 1077 is in transit."
    [step] = second_store.steps_of(StepKind.MODEL)
    assert step.args["cache_hit"] is True
    assert step.model == SMALL
    assert step.usage == Usage()
    assert step.latency_ms == 0
    assert second.usage == Usage()
    assert len(cache.sets) == 1  # a hit is not written back


def test_a_cached_tool_call_is_acted_on_like_a_fresh_one(agent, policy, model, store):
    cache = DictResponseCache()
    model.script(tool_call_reply("lookup_order", {"order_id": "1077"}, call_id="c1"),
                 decision_reply("In transit."))
    _engine(agent, policy, model, store, cache=cache).advance(new_run(QUESTION, "run-1"))

    # same question, same tool result, so the whole second run comes from the cache
    second_store = type(store)()
    state = _engine(agent, policy, model, second_store, cache=cache).advance(
        new_run(QUESTION, "run-2")
    )
    assert len(model.calls) == 2
    assert state.status == RunStatus.SUCCEEDED
    assert [s.args.get("cache_hit") for s in second_store.steps_of(StepKind.MODEL)] == [True] * 2
    [tool] = second_store.steps_of(StepKind.TOOL)
    assert tool.result["order_id"] == "1077"  # the tool itself did run for run-2
    assert [row["tool"] for row in second_store.ledger.values()] == ["lookup_order"]


def test_a_ttl_of_zero_disables_the_cache(agent, policy, model, store):
    policy.cache_ttl_seconds = 0
    cache = DictResponseCache()
    model.script(decision_reply("In transit."), decision_reply("Still in transit."))
    first = _engine(agent, policy, model, store, cache=cache).advance(new_run(QUESTION, "run-1"))
    second = _engine(agent, policy, model, type(store)(), cache=cache).advance(
        new_run(QUESTION, "run-2")
    )
    assert len(model.calls) == 2
    assert (first.answer, second.answer) == ("In transit.", "Still in transit.")
    assert cache.gets == [] and cache.sets == []
    assert second.usage.cost_usd > 0


def test_different_messages_miss_the_cache(agent, policy, model, store):
    cache = DictResponseCache()
    model.script(decision_reply("In transit."), decision_reply("Delivered."))
    _engine(agent, policy, model, store, cache=cache).advance(new_run(QUESTION, "run-1"))
    second_store = type(store)()
    second = _engine(agent, policy, model, second_store, cache=cache).advance(
        new_run("Where is my order 1001?", "run-2")
    )
    assert len(model.calls) == 2
    assert second.answer == "Delivered."
    assert "cache_hit" not in second_store.steps_of(StepKind.MODEL)[0].args
    assert len(cache.entries) == 2
    assert second.usage.cost_usd > 0


def test_a_changed_policy_misses_the_cache(agent, policy, model, store):
    """The policy's version is in the key: after an admin edits the policy, a run under the
    new version asks the model again instead of getting a reply made under the old one."""
    cache = DictResponseCache()
    model.script(decision_reply("In transit."), decision_reply("Delivered."))
    _engine(agent, policy, model, store, cache=cache).advance(new_run(QUESTION, "run-1"))
    edited = policy.model_copy(update={"max_steps": policy.max_steps + 1})
    second_store = type(store)()
    second = _engine(agent, edited, model, second_store, cache=cache).advance(
        new_run(QUESTION, "run-2"))
    assert len(model.calls) == 2 and second.answer == "Delivered."
    assert "cache_hit" not in second_store.steps_of(StepKind.MODEL)[0].args
    assert model_calls.policy_version(edited) != model_calls.policy_version(policy)
    assert model_calls.policy_version(policy.model_copy()) == model_calls.policy_version(policy)


def test_an_expired_entry_is_asked_again(agent, policy, model, store):
    policy.cache_ttl_seconds = 60
    clock = FakeClock()
    cache = DictResponseCache(clock)
    model.script(decision_reply("In transit."), decision_reply("Delivered."))
    _engine(agent, policy, model, store, cache=cache).advance(new_run(QUESTION, "run-1"))
    assert cache.sets[0][1] == 60
    clock.advance(61)
    second = _engine(agent, policy, model, type(store)(), cache=cache).advance(
        new_run(QUESTION, "run-2")
    )
    assert len(model.calls) == 2
    assert second.answer == "Delivered."


# -- team budget ---------------------------------------------------------------------------


def _recording_model(team: InMemoryTeamBudget) -> ScriptedModel:
    return ScriptedModel(on_call=lambda call: team.events.append(("call", call.model)))


def test_each_call_reserves_its_worst_case_first_and_settles_its_real_cost(
    agent, policy, store
):
    team = InMemoryTeamBudget("5")
    model = _recording_model(team).script(
        tool_call_reply("lookup_order", {"order_id": "1077"}, tokens_in=700, tokens_out=30),
        decision_reply("In transit.", confidence=0.4, tokens_in=900, tokens_out=25),
        decision_reply("Order 1077 is in transit.", tokens_in=900, tokens_out=35),
    )
    state = _engine(agent, policy, model, store, team_budget=team).advance(new_run(QUESTION))
    assert state.status == RunStatus.SUCCEEDED

    expected = []
    steps = store.steps_of(StepKind.MODEL)
    assert [s.model for s in steps] == [SMALL, SMALL, LARGE]
    for call, step in zip(model.calls, steps, strict=True):
        reserved = count_prompt(policy.profile(call.model), call.messages, call.tools).reserve()
        worst = worst_case_cost(policy, call.model, reserved)
        assert worst > step.usage.cost_usd > 0
        expected += [("reserve", worst), ("call", call.model),
                     ("settle", worst, step.usage.cost_usd)]
    assert team.events == expected
    assert steps[2].usage.cost_usd == PRICES[LARGE].cost(900, 0, 35)  # priced at its tier
    assert team.held == 0
    assert team.spent == state.usage.cost_usd


def test_a_refused_reservation_fails_the_run_before_the_call(agent, policy, model, store):
    team = InMemoryTeamBudget("0")
    model.script(decision_reply("unused"))
    state = _engine(agent, policy, model, store, team_budget=team).advance(new_run(QUESTION))

    assert state.status == RunStatus.FAILED
    assert state.reason == Reason.TEAM_BUDGET
    assert model.calls == []
    [(kind, amount)] = team.events
    assert kind == "refused" and amount > 0
    assert store.kinds() == ["retrieval", "final"]
    assert store.steps[-1].error == "team_budget reached"
    assert state.usage == Usage()


def test_a_refused_reservation_escalates_when_the_policy_says_so(agent, policy, model, store):
    policy.on_bound = "escalate"
    team = InMemoryTeamBudget("0")
    state = _engine(agent, policy, model, store, team_budget=team).advance(new_run(QUESTION))

    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.TEAM_BUDGET
    assert model.calls == []
    [esc] = store.escalations
    assert esc.reason == Reason.TEAM_BUDGET
    assert "team budget" in esc.question


def test_a_refusal_on_the_large_tier_stops_there(agent, policy, store):
    # enough for the small model's worst case, not for the large one's
    team = InMemoryTeamBudget("0.003")
    model = _recording_model(team).script(
        decision_reply("Maybe?", confidence=0.3, tokens_in=10, tokens_out=5), model=SMALL
    )
    state = _engine(agent, policy, model, store, team_budget=team).advance(new_run(QUESTION))

    assert state.reason == Reason.TEAM_BUDGET
    assert [c.model for c in model.calls] == [SMALL]
    assert [e[0] for e in team.events] == ["reserve", "call", "settle", "refused"]
    small_worst, large_worst = team.events[0][1], team.events[3][1]
    assert small_worst < team.limit < large_worst
    assert store.kinds() == ["retrieval", "model", "final"]


def test_a_model_error_settles_the_reservation_with_zero(agent, policy, store):
    team = InMemoryTeamBudget("5")
    model = _recording_model(team).script(ModelError("sim-small: HTTP 503: overloaded"))
    state = _engine(agent, policy, model, store, team_budget=team).advance(new_run(QUESTION))

    assert state.status == RunStatus.FAILED
    assert state.reason == Reason.MODEL_FAILED
    reserve, call, settle = team.events
    assert reserve[0] == "reserve" and reserve[1] > 0
    assert call == ("call", SMALL)
    assert settle == ("settle", reserve[1], Decimal("0"))
    assert team.held == 0 and team.spent == 0


def test_a_cache_hit_needs_no_reservation(agent, policy, model, store):
    team = InMemoryTeamBudget("5")
    cache = DictResponseCache()
    model.script(decision_reply("In transit."))
    ports = {"team_budget": team, "cache": cache}
    _engine(agent, policy, model, store, **ports).advance(new_run(QUESTION, "run-1"))
    assert [e[0] for e in team.events] == ["reserve", "settle"]

    team.limit = Decimal("0")  # the budget is spent, but a cached answer costs nothing
    state = _engine(agent, policy, model, type(store)(), **ports).advance(
        new_run(QUESTION, "run-2")
    )
    assert state.status == RunStatus.SUCCEEDED
    assert [e[0] for e in team.events] == ["reserve", "settle"]
    assert len(model.calls) == 1
