"""The support-refunds scenario, played turn by turn through the openai client."""

from __future__ import annotations

import json
import math

import pytest
from openai import OpenAI

from .conversation import ORDER_1042, Chat, call_args, decision


def test_refund_conversation_looks_up_refunds_and_reports(client: OpenAI) -> None:
    chat = Chat(client, "I want a refund for order 1042 because it arrived broken.")

    lookup = chat.step()
    assert lookup.choices[0].message.content is None
    assert call_args(lookup) == ("lookup_order", {"order_id": "1042", "confidence": 0.95})
    chat.tool_result(lookup, {"ok": True, "result": ORDER_1042})

    refund = chat.step()
    name, args = call_args(refund)
    assert name == "issue_refund"
    assert args == {
        "order_id": "1042",
        "amount": 180.0,
        "reason": "It arrived broken",
        "confidence": 0.9,
    }
    chat.tool_result(refund, {"ok": True, "result": {"refund_id": "R-77", "amount": 180.0}})

    final = decision(chat.step())
    assert final == {
        "answer": "Refund of $180.00 issued for order 1042 (refund id R-77).",
        "question": None,
        "confidence": 0.92,
    }


def test_tool_call_ids_are_distinct_per_turn_and_answerable(client: OpenAI) -> None:
    chat = Chat(client, "Please give me my money back for order 1042")
    lookup = chat.step()
    chat.tool_result(lookup, {"ok": True, "result": ORDER_1042})
    refund = chat.step()
    first_id = lookup.choices[0].message.tool_calls[0].id
    second_id = refund.choices[0].message.tool_calls[0].id
    assert first_id.startswith("call_") and second_id.startswith("call_")
    assert first_id != second_id


def test_missing_order_number_asks_then_uses_operator_answer(client: OpenAI) -> None:
    chat = Chat(client, "I want a refund for my last purchase")

    assert decision(chat.step()) == {
        "answer": None,
        "question": "Which order number is this about?",
        "confidence": 0.3,
    }
    chat.operator("It is order 20771.")
    assert call_args(chat.step()) == ("lookup_order", {"order_id": "20771", "confidence": 0.95})


def test_rejected_refund_is_reported_with_the_operator_reason(client: OpenAI) -> None:
    chat = Chat(client, "Refund order 1042 please")
    lookup = chat.step()
    chat.tool_result(lookup, {"ok": True, "result": ORDER_1042})
    refund = chat.step()
    chat.tool_result(
        refund, {"ok": False, "error": "rejected by operator: item was used for 6 months"}
    )

    final = decision(chat.step())
    assert final["question"] is None
    assert final["confidence"] == 0.9
    assert "not issued" in final["answer"]
    assert '"item was used for 6 months"' in final["answer"]

    chat.operator("Please try the refund again.")
    again = chat.step()
    assert again.choices[0].finish_reason == "stop", "issue_refund must never be called twice"


def test_failed_lookup_asks_instead_of_inventing_data(client: OpenAI) -> None:
    chat = Chat(client, "Refund order 5555")
    lookup = chat.step()
    chat.tool_result(lookup, {"ok": False, "error": "order not found"})

    assert decision(chat.step()) == {
        "answer": None,
        "question": "I could not look up order 5555 (order not found). How should I proceed?",
        "confidence": 0.2,
    }
    chat.operator("The order system is back, try again.")
    assert call_args(chat.step())[0] == "lookup_order"


def test_status_question_gets_a_summary_without_refunding(client: OpenAI) -> None:
    chat = Chat(client, "Where is my order 1042?")
    lookup = chat.step()
    chat.tool_result(lookup, {"ok": True, "result": ORDER_1042})

    assert decision(chat.step()) == {
        "answer": "Order 1042 is delivered: 2 items, total $180.00.",
        "question": None,
        "confidence": 0.9,
    }


def test_operator_veto_stops_the_refund(client: OpenAI) -> None:
    chat = Chat(client, "I want a refund for order 1042")
    lookup = chat.step()
    chat.tool_result(lookup, {"ok": True, "result": ORDER_1042})
    chat.operator("Do not refund this one, it was a gift card purchase.")

    final = decision(chat.step())
    assert final["answer"].startswith("Refund not issued for order 1042")
    assert "gift card" in final["answer"]


def test_tool_not_offered_turns_into_a_question(client: OpenAI) -> None:
    chat = Chat(client, "Refund order 1042", tools=[])
    answer = decision(chat.step())
    assert answer["answer"] is None
    assert "lookup_order" in answer["question"]


PROMPTED_SYSTEM = (
    "You are the support-refunds agent. Help the customer.\n\n## Tools (reply protocol)\n"
    "- lookup_order: look an order up\n- issue_refund: refund an order\n\n"
    "Reply with exactly one JSON object."
)


def prompted_first_turn(client: OpenAI, task: str, model: str) -> tuple[dict, float]:
    """The first turn in the prompted tool protocol (the call is content, so it has
    log-probabilities): the call, and the joint probability of its tokens."""
    completion = client.chat.completions.create(
        model=model, logprobs=True,
        messages=[{"role": "system", "content": PROMPTED_SYSTEM},
                  {"role": "user", "content": task}])
    content = completion.choices[0].message.content or ""
    call = json.loads(content.removeprefix("```json").removesuffix("```"))
    tokens = completion.choices[0].logprobs.content
    return call, math.exp(sum(token.logprob for token in tokens))


# The error model (agentdesk/llmsim/error_model.py) declares: on hedged tasks sim-small is
# unsure (reliability 0.55) and never overlooks it; its token probability is that ± 0.04,
# truncated at 2.5 sd; its self-report is overstated (0.82 ± 0.08). sim-large reports the
# brain's confidence as is. (These replaced tests that asserted sim-small's self-report was
# exactly 0.55 wherever its reading could fail: the simulator's old, never-wrong model.)
UNSURE_CEILING = 0.55 + 2.5 * 0.04


@pytest.mark.parametrize(
    "task",
    [
        "I think I want a refund for order 1042",
        "Refund order 1042, or something like that",
        "Not sure, maybe refund order 1042?",
    ],
)
def test_small_tier_is_less_sure_on_hedged_tasks(client: OpenAI, task: str) -> None:
    small_call, small_p = prompted_first_turn(client, task, "sim-small")
    large_call, large_p = prompted_first_turn(client, task, "sim-large")
    assert small_call["tool"] == large_call["tool"] == "lookup_order"
    assert small_p <= UNSURE_CEILING < 0.9 <= large_p
    assert large_call["confidence"] == 0.95
    assert 0.6 <= small_call["confidence"] <= 0.99  # the self-report still clusters high
    assert call_args(Chat(client, task, model="sim-large").step())[1]["confidence"] == 0.95


def test_small_tier_stays_sure_on_clear_tasks(client: OpenAI) -> None:
    chat = Chat(client, "Refund order 1042, it never arrived.", model="sim-small")
    lookup = chat.step()
    assert call_args(lookup)[1]["confidence"] >= 0.78  # 0.95 overstated, minus 2.5 sd
    chat.tool_result(lookup, {"ok": True, "result": ORDER_1042})
    assert call_args(chat.step())[1]["confidence"] >= 0.76
    _, p = prompted_first_turn(client, "Refund order 1042, it never arrived.", "sim-small")
    assert p >= 0.95 - 2.5 * 0.04


def test_small_tier_final_answer_tokens_are_unsure_on_hedged_task(client: OpenAI) -> None:
    chat = Chat(client, "Maybe check order 1042?", model="sim-small")
    lookup = chat.step()
    chat.tool_result(lookup, {"ok": True, "result": ORDER_1042})
    completion = chat.step(logprobs=True)
    assert decision(completion)["answer"].startswith("Order 1042 is delivered")
    tokens = completion.choices[0].logprobs.content
    assert math.exp(sum(token.logprob for token in tokens)) <= UNSURE_CEILING


def test_unknown_agent_gets_the_generic_echo(client: OpenAI) -> None:
    chat = Chat(client, "Summarise ticket 9", agent="triage", tools=[])
    assert decision(chat.step()) == {
        "answer": "Summarise ticket 9",
        "question": None,
        "confidence": 0.9,
    }


def test_without_json_format_the_reply_is_plain_text(client: OpenAI) -> None:
    chat = Chat(client, "Hello there", agent="triage", tools=[])
    completion = chat.step(response_format={"type": "text"})
    assert completion.choices[0].message.content == "Hello there"
