"""The declared error model, measured over many generated tasks (no HTTP: pure functions)."""

from __future__ import annotations

import statistics

import pytest

from agentdesk.llmsim.brains import Decision, ToolCall, brain_for, read_conversation
from agentdesk.llmsim.error_model import (
    CONFIDENT_ERROR_RATE_ENV,
    GREEDY,
    ErrorModel,
    Sample,
    SampleCounter,
    answer,
    same_proposal,
)
from agentdesk.llmsim.models import MODELS

SMALL, LARGE = MODELS["sim-small"], MODELS["sim-large"]
N = 1500


def conversation(task: str, looked_up: str | None = None):
    messages = [{"role": "system", "content": "You are the support-refunds agent."},
                {"role": "user", "content": task}]
    if looked_up:
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "c1", "type": "function",
                "function": {"name": "lookup_order", "arguments": f'{{"order_id": "{looked_up}"}}'},
            }]},
            {"role": "tool", "tool_call_id": "c1",
             "content": '{"ok": true, "result": {"status": "delivered", "total": 25.0}}'},
        ]
    return read_conversation(messages)


def tag(i: int) -> str:
    """A unique suffix without digits (a number could read as a second order)."""
    letters = ""
    while True:
        i, rest = divmod(i, 26)
        letters += chr(ord("a") + rest)
        if not i:
            return f"(ticket {letters})"


def hard(i: int) -> str:
    return f"I don't want a refund, just tell me where order 1001 is. {tag(i)}"


def hedged(i: int) -> str:
    return f"Maybe check where order 1001 is? {tag(i)}"


def clear(i: int) -> str:
    return f"Where is order 1001? {tag(i)}"


def answers(make, model=SMALL, errors=None, sample=GREEDY, looked_up="1001"):
    brain = brain_for("support-refunds")
    return [answer(brain, conversation(make(i), looked_up), model, sample, errors)
            for i in range(N)]


def self_report(a) -> float:
    return a.reply.confidence if isinstance(a.reply, Decision) else \
        a.reply.arguments["confidence"]


def test_small_tier_overlooks_hard_tasks_at_the_declared_rate_and_is_then_wrong():
    got = answers(hard)
    share = sum(a.overlooked for a in got) / N
    assert share == pytest.approx(0.10, abs=0.025)
    for a in got:
        wrong = isinstance(a.reply, ToolCall) and a.reply.name == "issue_refund"
        assert wrong  # the keyword reading refunds whatever it is told
        if a.overlooked:
            assert self_report(a) >= 0.76  # as sure as on a clear task
    assert not any(a.overlooked for a in answers(hedged) + answers(clear))


@pytest.mark.parametrize("rate", [0.0, 0.05, 1.0])
def test_the_rate_is_configurable(rate, monkeypatch):
    share = sum(a.overlooked for a in answers(hard, errors=ErrorModel.with_small_error_rate(
        rate))) / N
    assert share == pytest.approx(rate, abs=0.02)
    monkeypatch.setenv(CONFIDENT_ERROR_RATE_ENV, str(rate))
    assert ErrorModel.with_small_error_rate().basic.confident_error_rate == rate


def test_the_large_tier_makes_no_random_errors_and_reports_its_confidence():
    got = answers(hard, model=LARGE)
    assert not any(a.overlooked for a in got)
    assert {self_report(a) for a in got} == {0.9}  # the status answer, as the brain says it
    assert all(a.reply.answer.startswith("Order 1001 is delivered") for a in got)


def test_self_report_clusters_high_and_separates_badly():
    noticed = [self_report(a) for a in answers(hard) if not a.overlooked]
    sure = [self_report(a) for a in answers(clear)]
    assert statistics.mean(noticed) == pytest.approx(0.82, abs=0.02)
    assert statistics.mean(sure) > 0.93
    assert min(noticed) >= 0.6 and min(sure) >= 0.74
    # a quarter of the unsure steps say they are surer than a tenth of the sure ones
    tenth = sorted(sure)[len(sure) // 10]
    assert sum(s >= tenth for s in noticed) / len(noticed) > 0.25


def test_token_probabilities_follow_the_real_reliability():
    got = answers(hard)
    noticed = [a.token_probability for a in got if not a.overlooked]
    assert max(noticed) <= 0.55 + 2.5 * 0.04
    assert min(a.token_probability for a in answers(clear)) >= 0.9 - 2.5 * 0.04
    overlooked = [a for a in got if a.overlooked]
    shown = sum(a.token_probability < 0.7 for a in overlooked) / len(overlooked)
    assert shown == pytest.approx(0.5, abs=0.2)  # half the confident errors show in tokens


def test_samples_disagree_more_where_the_reading_is_unreliable():
    def disagreement(make, temperature=1.0):
        greedy = answers(make)
        sampled = answers(make, sample=Sample("draw1", temperature))
        return sum(not same_proposal(g.reply, s.reply) for g, s in zip(greedy, sampled,
                                                                     strict=True)) / N

    assert disagreement(hard) == pytest.approx(0.50, abs=0.05)
    assert disagreement(hedged) == pytest.approx(0.30, abs=0.05)
    assert disagreement(clear) == pytest.approx(0.04, abs=0.02)
    assert disagreement(hard, temperature=0.5) == pytest.approx(0.25, abs=0.05)


def test_a_diverging_sample_reads_the_hard_task_carefully():
    brain = brain_for("support-refunds")
    task = conversation(hard(0), "1001")
    diverged = next(a for i in range(200)
                    if (a := answer(brain, task, SMALL, Sample(f"draw{i}", 1.0))).diverged)
    assert isinstance(diverged.reply, Decision)
    assert diverged.reply.answer.startswith("Order 1001 is delivered")


def test_everything_is_deterministic():
    assert answers(hard)[:50] == answers(hard)[:50]
    sampled = Sample("draw3", 0.7)
    assert answers(hard, sample=sampled)[:50] == answers(hard, sample=sampled)[:50]


def test_sample_counter_tells_identical_requests_apart():
    counter = SampleCounter(capacity=2)
    assert counter.sample("a", None, None) == GREEDY == counter.sample("a", 0.0, 7)
    assert [counter.sample("a", 0.7, None).salt for _ in range(3)] == ["draw0", "draw1", "draw2"]
    assert counter.sample("a", 0.7, 42).salt == "seed42"
    counter.sample("b", 1.0, None)
    counter.sample("c", 1.0, None)  # "a" is forgotten (capacity 2)
    assert counter.sample("a", 0.7, None).salt == "draw0"


def test_draws_ignore_ids_inside_tool_results():
    """The same conversation run twice gets the same draws, though ids in results differ."""
    def with_result(refund_id: str):
        return read_conversation([
            {"role": "system", "content": "You are the support-refunds agent."},
            {"role": "user", "content": hard(7)},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": f"call-{refund_id}", "type": "function",
                "function": {"name": "issue_refund",
                             "arguments": '{"order_id": "1001", "amount": 25.0}'}}]},
            {"role": "tool", "tool_call_id": f"call-{refund_id}",
             "content": f'{{"ok": true, "result": {{"refund_id": "{refund_id}"}}}}'},
        ])

    brain = brain_for("support-refunds")
    first = answer(brain, with_result("rf_1"), SMALL)
    second = answer(brain, with_result("rf_2"), SMALL)
    assert first.token_probability == second.token_probability
    assert self_report(first) == self_report(second)
