"""How a tier reads the customer's task: which order, what is asked, for how much.

A basic tier reads keywords: the first order number, any refund word means "refund it",
and a refund is for the order total. A strong tier reads like a careful person: a refund
word under a negation is no request ("I don't want a refund, where is it?"), a question
about how returns work is a policy question, with several order numbers it acts on the one
the request is about (or asks which), and an explicit amount is a partial refund.

Where the two readings can differ, ``ambiguity`` calls the task hard; how often the basic
tier notices that (and says it is unsure) is the declared error model (``error_model``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..models import Quality, SimModel
from .conversation import Conversation
from .cues import asks_for_refund, money_amounts, policy_question, singled_out_order
from .text import contains_phrase, order_numbers

REFUND_INTENT_PHRASES: tuple[str, ...] = (
    "refund",
    "refunds",
    "refunded",
    "money back",
    "return",
    "returns",
    "returned",
    "returning",
)


class Intent(Enum):
    REFUND = "refund"
    STATUS = "status"
    POLICY = "policy"


@dataclass(frozen=True)
class TaskReading:
    order_id: str | None
    intent: Intent
    intent_source: str | None = None
    """The message asking for the refund (its "because …" becomes the refund reason)."""
    amount: float | None = None
    """An explicit refund amount; None means the order total."""
    unclear_between: tuple[str, ...] = ()
    """Several orders and none singled out: the tier should ask which one."""


def read_task(conversation: Conversation, model: SimModel) -> TaskReading:
    if model.quality >= Quality.STRONG:
        return careful_reading(conversation)
    return keyword_reading(conversation)


def keyword_reading(conversation: Conversation) -> TaskReading:
    """First order number; any refund word is a request for the full total."""
    source = refund_intent_source(conversation)
    return TaskReading(
        order_id=find_order_id(conversation),
        intent=Intent.REFUND if source is not None else Intent.STATUS,
        intent_source=source,
    )


def careful_reading(conversation: Conversation) -> TaskReading:
    task = conversation.task
    numbers = order_numbers(task)
    order_id, unclear = find_order_id(conversation), ()
    if len(numbers) >= 2:
        named = _operator_choice(conversation, numbers) or singled_out_order(task)
        order_id, unclear = (named, ()) if named else (numbers[0], tuple(numbers))
    if policy_question(task):
        return TaskReading(order_id, Intent.POLICY, unclear_between=unclear)
    source = task if asks_for_refund(task) else None
    if source is None:
        source = next((m.text for m in conversation.operator_messages
                       if asks_for_refund(m.text)), None)
    if source is None:
        return TaskReading(order_id, Intent.STATUS, unclear_between=unclear)
    amounts = money_amounts(task)
    return TaskReading(
        order_id, Intent.REFUND, source, amount=amounts[0] if amounts else None,
        unclear_between=unclear,
    )


def find_order_id(conversation: Conversation) -> str | None:
    """First order number of the task, else of the latest operator message that has one."""
    found = order_numbers(conversation.task)
    if found:
        return found[0]
    for message in reversed(conversation.operator_messages):
        found = order_numbers(message.text)
        if found:
            return found[0]
    return None


def refund_intent_source(conversation: Conversation) -> str | None:
    """The message asking for a refund: the task, else the first operator message that does."""
    candidates = [conversation.task, *(m.text for m in conversation.operator_messages)]
    for text in candidates:
        if contains_phrase(text, REFUND_INTENT_PHRASES):
            return text
    return None


def _operator_choice(conversation: Conversation, numbers: list[str]) -> str | None:
    """An operator who names one of the task's orders settles which one it is about."""
    for message in reversed(conversation.operator_messages):
        named = [n for n in order_numbers(message.text) if n in numbers]
        if len(named) == 1:
            return named[0]
    return None
