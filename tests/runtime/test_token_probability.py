"""The logprobs signal reads exactly the tokens that carry the decision."""

from __future__ import annotations

import math

import pytest

from agentdesk.runtime.llm import ModelReply, TokenLogprob
from agentdesk.runtime.token_probability import decision_probability

from .fakes import prompted_call_reply, raw_reply, tool_call_reply, with_logprobs


def _decision(tokens: list[tuple[str, float]]) -> ModelReply:
    return with_logprobs(raw_reply("".join(t for t, _ in tokens)), tokens)


def test_a_decision_counts_the_answer_tokens_only():
    reply = _decision([
        ('{"answer": ', 0.01), ('"Order', 0.5), (" 1077", 0.8), (' shipped."', 0.9),
        (', "question": null, "confidence": ', 0.01), ("0.95", 0.01), ("}", 0.01),
    ])
    assert decision_probability(reply, tool=None) == pytest.approx(0.5 * 0.8 * 0.9)


def test_a_null_answer_counts_the_null_token():
    reply = _decision([('{"answer": ', 0.1), ("null", 0.3),
                       (', "question": "Which order?", "confidence": 0.2}', 0.1)])
    assert decision_probability(reply, tool=None) == pytest.approx(0.3)


def test_a_token_straddling_the_value_and_its_punctuation_counts():
    reply = _decision([('{"answer":"Y', 0.6), ('es",', 0.7),
                       ('"question":null,"confidence":1}', 0.01)])
    assert decision_probability(reply, tool=None) == pytest.approx(0.6 * 0.7)


def test_prose_and_a_think_block_around_the_json_are_left_out():
    reply = _decision([("<think>maybe {\"answer\": \"No\"}</think>", 0.01),
                       ("Here it is: ```json\n", 0.01), ('{"answer": "', 0.2), ("Yes", 0.9),
                       ('", "question": null, "confidence": 0.9}', 0.2), ("\n```", 0.01)])
    # '{"answer": "' carries the value's opening quote, so it counts too
    assert decision_probability(reply, tool=None) == pytest.approx(0.2 * 0.9 * 0.2)


def test_a_prompted_tool_call_counts_its_name_and_arguments_not_the_confidence():
    reply = prompted_call_reply("issue_refund", {"order_id": "1042", "amount": 180.0},
                                tool_probability=0.9, args_probability=0.99,
                                other_probability=0.01)
    argument_tokens = math.ceil(len('{"order_id": "1042", "amount": 180.0}') / 4)
    assert decision_probability(reply, tool="issue_refund") == pytest.approx(
        0.9 * 0.99 ** argument_tokens)


def test_a_confidence_inside_the_arguments_is_excluded():
    tokens = [('{"tool": "lookup_order", "arguments": {"order_id": "7"', 0.5),
              (', "confidence": 0.99', 0.01), ("}}", 0.8)]
    reply = with_logprobs(tool_call_reply("lookup_order", {"order_id": "7"}), tokens)
    assert decision_probability(reply, tool="lookup_order") == pytest.approx(0.5 * 0.8)


def test_a_native_tool_call_has_no_signal():
    # OpenAI gives logprobs for the content only; a native call has none to read
    reply = tool_call_reply("lookup_order", {"order_id": "7"})
    assert decision_probability(reply, tool="lookup_order") is None
    chatter = with_logprobs(tool_call_reply("lookup_order", {"order_id": "7"}),
                            [("Let me look that up.", 0.9)])
    assert decision_probability(chatter, tool="lookup_order") is None


def test_content_that_is_not_the_proposal_read_has_no_signal():
    reply = prompted_call_reply("lookup_order", {"order_id": "7"})
    assert decision_probability(reply, tool="issue_refund") is None  # another tool
    assert decision_probability(reply, tool=None) is None  # a call, read as a decision
    answer = _decision([('{"question": null, "confidence": 0.9}', 0.9)])
    assert decision_probability(answer, tool=None) is None  # no answer key


def test_a_character_split_across_tokens_is_placed_by_its_bytes():
    text = '{"answer": "Café", "question": null, "confidence": 0.9}'
    data = text.encode()
    cut = data.index("é".encode()) + 1  # inside the two bytes of é
    tokens = [TokenLogprob(token="{...Caf\\xc3", logprob=math.log(0.5), bytes=list(data[:cut])),
              TokenLogprob(token="\\xa9...", logprob=math.log(0.4), bytes=list(data[cut:]))]
    reply = ModelReply(model="m", content=text, logprobs=tokens)
    assert decision_probability(reply, tool=None) == pytest.approx(0.5 * 0.4)


def test_no_logprobs_or_a_non_finite_one_is_no_signal():
    assert decision_probability(raw_reply('{"answer": "x"}'), tool=None) is None
    reply = ModelReply(model="m", content='{"answer": "x"}', logprobs=[
        TokenLogprob(token='{"answer": "x"}', logprob=float("nan"))])
    assert decision_probability(reply, tool=None) is None
