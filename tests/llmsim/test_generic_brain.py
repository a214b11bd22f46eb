"""The generic brain: an agent the simulator has no scenario for still uses its tools,
deterministically, from what the conversation and the offered tools say."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from agentdesk.llmsim.brains import generic
from agentdesk.llmsim.brains.conversation import Conversation, read_conversation
from agentdesk.llmsim.brains.replies import Decision, ToolCall
from agentdesk.llmsim.models import MODELS

from .conversation import function_tool

LOOKUP = function_tool("lookup_ticket", ticket_id={"type": "integer"})
LOOKUP["function"]["description"] = "Look up a support ticket by its number: status, title."
CREATE = {
    "type": "function",
    "function": {
        "name": "create_ticket",
        "description": "Open a new support ticket for a problem.",
        "parameters": {
            "type": "object",
            "properties": {
                "title": {"type": "string", "maxLength": 40},
                "priority": {"type": "string", "enum": ["low", "normal", "high"]},
                "confidence": {"type": "number"},
            },
            "required": ["title", "confidence"],
        },
    },
}
ORDER = function_tool("lookup_order", order_id={"type": "string", "pattern": r"^\d{3,8}$"})
TOOLS = [LOOKUP, CREATE]


@dataclasses.dataclass(frozen=True)
class WithTools(Conversation):
    """A conversation that carries the offered tools, as ``Conversation.tools`` will."""

    tools: tuple[dict[str, Any], ...] = ()


def chat(task: str, *turns: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "You are the helpdesk agent. Help."},
            {"role": "user", "content": task}, *turns]


def called(name: str, args: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function",
         "function": {"name": name, "arguments": json.dumps(args)}}]}


def result(payload: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": json.dumps(payload)}


def step(messages: list[dict[str, Any]], tools: list[dict[str, Any]] = TOOLS):
    """The brain's reply, through ``reply`` as the simulator calls it."""
    conversation = read_conversation(messages)
    fields = {f.name: getattr(conversation, f.name) for f in dataclasses.fields(conversation)
              if f.name != "tools"}
    return generic.reply(WithTools(**fields, tools=tuple(tools)), MODELS["sim-large"])


def test_calls_the_tool_whose_words_match_the_task_with_numbers_filled_in() -> None:
    assert step(chat("Please look up ticket 42.")) == ToolCall(
        "lookup_ticket", {"ticket_id": 42, "confidence": 0.85})


def test_a_string_field_gets_the_task_cut_to_its_max_length() -> None:
    reply = step(chat("Open a ticket: the printer on floor 3 is jammed again"))
    assert reply == ToolCall("create_ticket", {
        "title": "Open a ticket: the printer on floor 3 is", "confidence": 0.85})


def test_name_value_pairs_in_the_text_fill_arguments_optional_ones_too() -> None:
    reply = step(chat('Create a ticket title="Printer jam" priority: high'))
    assert reply == ToolCall("create_ticket", {"title": "Printer jam", "priority": "high",
                                               "confidence": 0.85})
    assert step(chat("ticket id=7 please, look it up")) == ToolCall(
        "lookup_ticket", {"ticket_id": 7, "confidence": 0.85})


def test_a_pattern_checked_string_takes_the_word_that_fits() -> None:
    assert step(chat("Where is my order 1042?"), [ORDER]) == ToolCall(
        "lookup_order", {"order_id": "1042", "confidence": 0.85})


def test_a_tool_result_is_summarised_as_a_confident_answer() -> None:
    messages = chat("Look up ticket 42", called("lookup_ticket", {"ticket_id": 42}),
                    result({"ok": True, "result": {"ticket_id": 42, "status": "open",
                                                   "title": "Printer jam"}}))
    assert step(messages) == Decision.final(
        "lookup_ticket returned ticket_id: 42; status: open; title: Printer jam.", 0.9)


def test_a_tool_error_asks_the_operator_then_uses_the_answer() -> None:
    failed = chat("Look up ticket 42", called("lookup_ticket", {"ticket_id": 42}),
                  result({"ok": False, "error": "ticket 42 not found"}))
    asked = step(failed)
    assert asked == Decision.ask(
        "lookup_ticket failed: ticket 42 not found. How should I proceed?", 0.2)

    again = step([*failed, {"role": "user", "content": "Operator: try ticket_id=7"}])
    assert again == ToolCall("lookup_ticket", {"ticket_id": 7, "confidence": 0.85})

    reported = step([*failed, {"role": "user", "content": "Operator: it was closed"}])
    assert reported == Decision.final(
        "lookup_ticket failed (ticket 42 not found). Operator: it was closed", 0.9)


def test_a_rejected_call_is_reported_not_retried() -> None:
    rejected = chat("Open a ticket: VPN down", called("create_ticket", {"title": "VPN down"}),
                    result({"ok": False, "error": "rejected by operator: duplicate"}),
                    {"role": "user", "content": "Operator: Rejected. duplicate"})
    assert step(rejected) == Decision.final(
        "I did not run create_ticket: an operator rejected it (Rejected. duplicate).", 0.9)


def test_no_matching_tool_or_no_tools_echoes_as_before() -> None:
    assert step(chat("Summarise the weather")) == Decision.final("Summarise the weather", 0.9)
    assert step(chat("Look up ticket 42"), []) == Decision.final("Look up ticket 42", 0.9)
    # a conversation that does not carry tools at all is read as offering none
    plain = read_conversation(chat("Look up ticket 42"))
    assert generic.reply(plain, MODELS["sim-small"]) == Decision.final("Look up ticket 42", 0.9)


def test_ties_go_to_the_tool_offered_first_and_replies_are_deterministic() -> None:
    messages = chat("ticket please")
    assert step(messages, [CREATE, LOOKUP]).name == "create_ticket"
    assert step(messages, [LOOKUP, CREATE]).name == "lookup_ticket"
    assert step(messages) == step(messages)


def test_an_enum_field_takes_the_value_the_task_mentions() -> None:
    required = json.loads(json.dumps(CREATE))
    required["function"]["parameters"]["required"] = ["title", "priority", "confidence"]
    reply = step(chat("Open a high priority ticket: VPN down"), [required])
    assert isinstance(reply, ToolCall)
    assert reply.arguments["priority"] == "high"


def test_words_split_identifiers_and_ignore_stop_words() -> None:
    assert generic.words("createTicket for the lookup_orders tool") == {
        "create", "ticket", "lookup", "order"}
