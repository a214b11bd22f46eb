"""Confidence from several signals: each recorded raw on the model step, combined by the
minimum of the policy's chosen ones, and the combined value is what the tiers and the
approval checks use. Agreement samples are paid for like any call and never cached."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentdesk.runtime import confidence
from agentdesk.runtime.budget import worst_case_cost
from agentdesk.runtime.llm import ModelError
from agentdesk.runtime.loop import Engine
from agentdesk.runtime.options import ConfidenceSignal
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.profiles import ToolCalling
from agentdesk.runtime.state import PolicySnapshot
from agentdesk.runtime.tokens import count_prompt

from .conftest import LARGE, PRICES, SMALL, new_run
from .fakes import (
    DictResponseCache,
    InMemoryTeamBudget,
    ScriptedModel,
    decision_reply,
    prompted_call_reply,
    tool_call_reply,
    with_logprobs,
)

QUESTION = "Where is my order 1077?"
SELF, LOGPROBS, AGREEMENT = (ConfidenceSignal.SELF_REPORT, ConfidenceSignal.LOGPROBS,
                             ConfidenceSignal.AGREEMENT)


def _signals(policy: PolicySnapshot, *chosen: ConfidenceSignal, k: int = 3) -> None:
    policy.confidence_signals = list(chosen)
    policy.agreement_samples = k
    policy.agreement_temperature = 0.8
    for name in (SMALL, LARGE):
        policy.models[name] = PRICES[name].model_copy(update={"logprobs": True})


def _answer(text: str, *, answer_probability: float, confidence: float = 0.95, **usage):
    """A decision whose answer tokens (two of them) have ``answer_probability`` each."""
    head, tail = '{"answer": ', f', "question": null, "confidence": {confidence}}}'
    value = f'"{text}"'
    half = len(value) // 2
    reply = decision_reply(text, confidence=confidence, **usage)
    assert reply.content == head + value + tail
    return with_logprobs(reply, [(head, 0.01), (value[:half], answer_probability ** 0.5),
                                 (value[half:], answer_probability ** 0.5), (tail, 0.01)])


def _model_steps(store):
    return store.steps_of(StepKind.MODEL)


# -- recorded raw, combined -----------------------------------------------------------------


def test_by_default_the_self_report_alone_decides_and_nothing_more_is_asked(
        engine, model, store):
    model.script(decision_reply("Order 1077 is in transit.", confidence=0.92))
    state = engine.advance(new_run(QUESTION))
    assert state.status == RunStatus.SUCCEEDED
    [step] = _model_steps(store)
    assert step.args["signals"] == {"self_report": 0.92, "logprobs": None, "agreement": None}
    assert step.args["confidence_from"] == ["self_report"] and step.confidence == 0.92
    assert [c.sampling.logprobs for c in model.calls] == [False]
    assert model.samples() == []


def test_all_three_signals_are_recorded_and_the_least_sure_one_decides(
        agent, policy, model, store):
    _signals(policy, SELF, LOGPROBS, AGREEMENT, k=3)
    text = "Order 1077 is in transit."
    model.script(_answer(text, answer_probability=0.81, confidence=0.92), model=SMALL)
    model.script(decision_reply(text), decision_reply(text.upper() + "  "),  # same, normalised
                 decision_reply("It was delivered."), model=SMALL)
    model.script(decision_reply(text, confidence=0.99), decision_reply(text),
                 decision_reply(text), decision_reply(text), model=LARGE)
    state = Engine(agent, policy, model, store).advance(new_run(QUESTION))

    small, large = _model_steps(store)
    assert small.args["signals"] == {"self_report": 0.92, "logprobs": pytest.approx(0.81),
                                     "agreement": pytest.approx(2 / 3, abs=1e-6)}
    assert small.confidence == pytest.approx(2 / 3, abs=1e-6)  # below 0.7: ask the large tier
    assert small.args["confidence_from"] == ["self_report", "logprobs", "agreement"]
    assert [s["agrees"] for s in small.args["agreement_samples"]] == [True, True, False]
    # the large model's reply had no logprobs: left out, the other two decide
    assert large.args["signals"] == {"self_report": 0.99, "logprobs": None, "agreement": 1.0}
    assert large.args["confidence_from"] == ["self_report", "agreement"]
    assert state.status == RunStatus.SUCCEEDED and state.answer == text


def test_logprobs_are_asked_only_when_chosen_and_the_profile_returns_them(
        agent, policy, model, store):
    policy.confidence_signals = [SELF, LOGPROBS]  # the profiles say: no logprobs
    model.script(decision_reply("In transit.", confidence=0.9))
    Engine(agent, policy, model, store).advance(new_run(QUESTION))
    assert [c.sampling.logprobs for c in model.calls] == [False]
    [step] = _model_steps(store)
    assert step.args["signals"]["logprobs"] is None and step.confidence == 0.9

    _signals(policy, SELF, LOGPROBS)
    model.script(_answer("In transit.", answer_probability=0.9))
    Engine(agent, policy, model, type(store)()).advance(new_run(QUESTION, "run-2"))
    assert model.calls[-1].sampling.logprobs is True
    assert model.calls[-1].sampling.temperature is None  # the decision call stays at 0


def test_a_cached_reply_keeps_its_logprobs_and_only_answers_calls_that_ask_for_them(
        agent, policy, model, store):
    _signals(policy, SELF, LOGPROBS)
    cache = DictResponseCache()
    model.script(_answer("In transit.", answer_probability=0.9))
    Engine(agent, policy, model, store, cache=cache).advance(new_run(QUESTION, "run-1"))
    second = type(store)()
    Engine(agent, policy, model, second, cache=cache).advance(new_run(QUESTION, "run-2"))
    [step] = _model_steps(second)
    assert step.args["cache_hit"] is True and len(model.calls) == 1
    assert step.args["signals"]["logprobs"] == pytest.approx(0.9)

    policy.confidence_signals = [SELF]  # not asking: the entry with logprobs is another key
    model.script(decision_reply("In transit."))
    Engine(agent, policy, model, type(store)(), cache=cache).advance(new_run(QUESTION, "run-3"))
    assert len(model.calls) == 2 and model.calls[-1].sampling.logprobs is False


def test_unsure_logprobs_send_a_confident_self_report_up_a_tier(agent, policy, model, store):
    _signals(policy, SELF, LOGPROBS)
    model.script(_answer("Delivered.", answer_probability=0.3, confidence=0.97), model=SMALL)
    model.script(_answer("In transit.", answer_probability=0.95, confidence=0.9), model=LARGE)
    state = Engine(agent, policy, model, store).advance(new_run(QUESTION))
    small, large = _model_steps(store)
    assert small.confidence == pytest.approx(0.3) and small.args["why"] == "small model unsure"
    assert large.confidence == pytest.approx(0.9)
    assert state.answer == "In transit."


def test_a_native_tool_call_has_no_logprobs_and_a_prompted_one_has(agent, policy, model, store):
    _signals(policy, SELF, LOGPROBS)
    model.script(tool_call_reply("lookup_order", {"order_id": "1077"}, confidence=0.9),
                 decision_reply("In transit.", confidence=0.9))
    Engine(agent, policy, model, store).advance(new_run(QUESTION))
    native = _model_steps(store)[0]
    assert native.args["signals"]["logprobs"] is None
    assert native.args["confidence_from"] == ["self_report"] and native.confidence == 0.9

    policy.models[SMALL] = policy.models[SMALL].model_copy(
        update={"tool_calling": ToolCalling.PROMPTED})
    prompted_store = type(store)()
    model.script(prompted_call_reply("lookup_order", {"order_id": "1077"}, confidence=0.9,
                                     tool_probability=0.95, args_probability=0.9),
                 decision_reply("In transit.", confidence=0.9))
    Engine(agent, policy, model, prompted_store).advance(new_run(QUESTION, "run-2"))
    prompted = _model_steps(prompted_store)[0]
    expected = 0.95 * 0.9 ** 5  # '{"order_id": "1077"}' is five 4-character tokens
    assert prompted.args["signals"]["logprobs"] == pytest.approx(expected)
    assert prompted.confidence == pytest.approx(expected)


def test_the_combined_value_is_what_the_approval_checks_see(agent, policy, model, store):
    policy.large_model = SMALL  # one tier: unsure goes straight to a human
    _signals(policy, SELF, AGREEMENT, k=2)
    call = tool_call_reply("issue_refund", {"order_id": "1001", "amount": 20.0,
                                            "reason": "broken"}, confidence=0.99)
    other = tool_call_reply("issue_refund", {"order_id": "1001", "amount": 200.0,
                                             "reason": "broken"}, confidence=0.99)
    lookup = tool_call_reply("lookup_order", {"order_id": "1001"})
    model.script(lookup, lookup, lookup, call, call, other)  # each decision, then 2 samples
    state = Engine(agent, policy, model, store).advance(new_run("Refund order 1001"))
    assert state.reason == Reason.LOW_CONFIDENCE
    refund_step = _model_steps(store)[-1]
    assert refund_step.args["signals"]["agreement"] == 0.5
    assert store.escalations[-1].confidence == 0.5
    assert state.pending_call is not None and state.pending_call.confidence == 0.5
    assert state.pending_call.args["confidence"] == 0.99  # the transcript keeps the model's


# -- agreement: paid for, never cached -------------------------------------------------------


def test_samples_are_paid_for_on_the_step_reserved_on_the_team_budget_and_never_cached(
        agent, policy, store):
    _signals(policy, SELF, AGREEMENT, k=2)
    team, cache = InMemoryTeamBudget("5"), DictResponseCache()
    model = ScriptedModel(on_call=lambda call: team.events.append(("call", call.model)))
    model.script(decision_reply("In transit.", tokens_in=900, tokens_out=30),
                 decision_reply("In transit.", tokens_in=900, tokens_out=40),
                 decision_reply("in transit.", tokens_in=900, tokens_out=50))
    state = Engine(agent, policy, model, store, team_budget=team, cache=cache).advance(
        new_run(QUESTION))
    assert state.status == RunStatus.SUCCEEDED
    [step] = _model_steps(store)
    cost = sum((PRICES[SMALL].cost(900, 0, out) for out in (30, 40, 50)), Decimal(0))
    assert step.usage.tokens_out == 120 and step.usage.cost_usd == cost
    assert state.usage.cost_usd == cost == team.spent
    assert [s["cost_usd"] for s in step.args["agreement_samples"]] == [
        str(PRICES[SMALL].cost(900, 0, out)) for out in (40, 50)]
    assert [e[0] for e in team.events] == ["reserve", "call", "settle"] * 3
    assert [c.sampling.temperature for c in model.calls] == [None, 0.8, 0.8]
    assert len(cache.gets) == 1 and len(cache.sets) == 1  # the decision call only
    worst = worst_case_cost(policy, SMALL, count_prompt(
        policy.profile(SMALL), model.calls[1].messages, model.calls[1].tools).reserve())
    assert team.events[3] == ("reserve", worst)


def test_a_cached_decision_still_draws_fresh_samples(agent, policy, model, store):
    _signals(policy, SELF, AGREEMENT, k=2)
    policy.large_model = SMALL  # one tier: unsure goes to a human
    cache = DictResponseCache()
    model.script(*[decision_reply("In transit.")] * 3)
    Engine(agent, policy, model, store, cache=cache).advance(new_run(QUESTION, "run-1"))
    model.script(decision_reply("In transit."), decision_reply("Lost."))
    second = type(store)()
    Engine(agent, policy, model, second, cache=cache).advance(new_run(QUESTION, "run-2"))
    [step] = _model_steps(second)
    assert step.args["cache_hit"] is True and len(model.calls) == 5
    assert step.args["signals"]["agreement"] == 0.5


def test_no_samples_are_bought_when_the_step_is_already_unsure(agent, policy, model, store):
    _signals(policy, SELF, AGREEMENT, k=3)
    model.script(decision_reply("Maybe?", confidence=0.4), model=SMALL)
    model.script(*[decision_reply("In transit.", confidence=0.9)] * 4, model=LARGE)
    Engine(agent, policy, model, store).advance(new_run(QUESTION))
    small, large = _model_steps(store)
    assert small.args["agreement_skipped"] == confidence.SKIPPED
    assert small.args["signals"]["agreement"] is None and "agreement_samples" not in small.args
    assert [c.model for c in model.samples()] == [LARGE] * 3
    assert large.args["signals"]["agreement"] == 1.0


def test_a_sample_the_cost_ceiling_refuses_ends_the_run_and_keeps_what_was_spent(
        agent, policy, store):
    _signals(policy, SELF, AGREEMENT, k=3)
    each = PRICES[SMALL].cost(900, 0, 30)

    def ceiling(call) -> None:  # room for the decision and one sample, not for a second
        if len(model.calls) == 1:
            reserved = count_prompt(policy.profile(SMALL), call.messages, call.tools).reserve()
            policy.max_cost_usd = each + worst_case_cost(policy, SMALL, reserved) + each / 2

    model = ScriptedModel(on_call=ceiling)
    model.script(*[decision_reply("In transit.", tokens_in=900, tokens_out=30)] * 3)
    state = Engine(agent, policy, model, store).advance(new_run(QUESTION))
    assert (state.status, state.reason) == (RunStatus.FAILED, Reason.COST_LIMIT)
    [step] = _model_steps(store)
    assert step.args["agreement_stopped"] == "cost_limit"
    assert len(step.args["agreement_samples"]) == 1 and len(model.calls) == 2
    assert state.usage.cost_usd == step.usage.cost_usd == each * 2
    assert store.steps[-1].error == "cost_limit reached"


def test_a_failing_sample_stops_sampling_and_the_others_decide(agent, policy, model, store):
    _signals(policy, SELF, AGREEMENT, k=3)
    model.script(decision_reply("In transit.", confidence=0.9), decision_reply("In transit."),
                 ModelError("sim-small: timed out"))
    state = Engine(agent, policy, model, store).advance(new_run(QUESTION))
    [step] = _model_steps(store)
    assert step.args["signals"]["agreement"] == 1.0  # one answered, and agreed
    assert step.args["agreement_samples"][-1] == {"error": "sim-small: timed out"}
    assert len(model.calls) == 3 and state.status == RunStatus.SUCCEEDED


def test_an_unreadable_sample_disagrees(agent, policy, model, store):
    _signals(policy, SELF, AGREEMENT, k=2)
    policy.large_model = SMALL
    model.script(decision_reply("In transit.", confidence=0.9), decision_reply("In transit."),
                 tool_call_reply("lookup_order", raw_arguments="{oops"))
    state = Engine(agent, policy, model, store).advance(new_run(QUESTION))
    assert state.reason == Reason.LOW_CONFIDENCE
    step = _model_steps(store)[0]
    assert step.args["signals"]["agreement"] == 0.5
    assert step.args["agreement_samples"][1]["proposal"].startswith("unreadable")


# -- the combiner ---------------------------------------------------------------------------


@pytest.mark.parametrize(("chosen", "signals", "expected", "used"), [
    ([SELF, LOGPROBS, AGREEMENT], {"self_report": 0.9, "logprobs": 0.7, "agreement": 0.8},
     0.7, ["self_report", "logprobs", "agreement"]),
    ([SELF, LOGPROBS], {"self_report": 0.9, "logprobs": None, "agreement": 0.1},
     0.9, ["self_report"]),  # missing: left out; not chosen: ignored
    ([LOGPROBS], {"self_report": 0.6, "logprobs": None, "agreement": None},
     0.6, ["self_report"]),  # nothing chosen available: the self-report decides
    ([SELF, AGREEMENT], {"self_report": None, "logprobs": None, "agreement": 1.0},
     0.0, ["self_report", "agreement"]),  # asked for and not given: not confident
    ([AGREEMENT], {"self_report": None, "logprobs": None, "agreement": 0.75},
     0.75, ["agreement"]),
])
def test_the_combination_is_the_minimum_of_the_chosen_available_signals(
        chosen, signals, expected, used):
    combined = confidence.combine(PolicySnapshot(confidence_signals=chosen), signals)
    assert (combined.confidence, combined.used) == (expected, used)
