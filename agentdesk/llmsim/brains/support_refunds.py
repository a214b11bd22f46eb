"""Brain for the ``support-refunds`` agent: look the order up, refund it if asked, report.

The brain is a pure function of the conversation, re-evaluated from scratch on every
call, so a conversation replayed to it always gets the same next step:

1. no order number (task, else the latest operator message naming one) -> ask for it,
   unless the task is a question about policy, answered from the retrieved knowledge;
2. order not looked up yet (or the operator answered after a failed lookup) -> lookup_order;
3. lookup failed -> ask the operator how to proceed, never inventing order data;
4. several orders and none singled out -> ask which one;
5. a refund was already attempted -> report its outcome (issue_refund is never called twice);
6. a policy question -> the order's status and the policy that answers it;
7. refund intent (refund / money back / return) and no operator veto -> issue_refund;
8. otherwise -> summarise the order status.

How the task is read (which order, refund or not, which amount) depends on the tier: see
``reading``. The confidences here are what each step deserves when the reading is right;
what a tier *reports* (lowered where it notices a task is hard, overstated, noisy) is the
simulator's declared error model, applied to the reply afterwards (``error_model``).
"""

from __future__ import annotations

import re
from typing import Any

from ..models import SimModel
from .conversation import Conversation, ToolExchange
from .cues import policy_topic
from .reading import Intent, TaskReading, read_task
from .replies import Decision, Reply, ToolCall
from .text import contains_phrase, first_sentence, format_money

LOOKUP_TOOL = "lookup_order"
REFUND_TOOL = "issue_refund"

DO_NOT_REFUND_PHRASES: tuple[str, ...] = (
    "don't refund",
    "dont refund",
    "do not refund",
    "not refund",
    "no refund",
    "don't issue",
    "do not issue",
    "don't proceed",
    "do not proceed",
    "hold off",
    "reject",
    "rejected",
    "deny",
    "denied",
    "decline",
    "declined",
)
ALREADY_REFUNDED_STATUSES = frozenset({"refunded"})
_REASON_RE = re.compile(r"\b(?:because|since|due to)\s+(?P<why>[^.!?]+)", re.IGNORECASE)


def reply(conversation: Conversation, model: SimModel) -> Reply:
    """The next step of the refund workflow for this conversation."""

    reading = read_task(conversation, model)
    order_id = reading.order_id
    if order_id is None:
        if reading.intent is Intent.POLICY:
            policy = policy_answer(conversation)
            if policy is not None:
                return Decision.final(policy, 0.85)
        return Decision.ask("Which order number is this about?", 0.3)

    lookup = _latest_call(conversation, LOOKUP_TOOL, order_id)
    if lookup is None or lookup.result is None or _retry_failed_lookup(conversation, lookup):
        return ToolCall(LOOKUP_TOOL, {"order_id": order_id, "confidence": 0.95})
    if not lookup.result.ok:
        return Decision.ask(
            f"I could not look up order {order_id} ({lookup.result.error}). How should I proceed?",
            0.2,
        )
    order: dict[str, Any] = lookup.result.result if isinstance(lookup.result.result, dict) else {}

    if reading.unclear_between:
        orders = " and ".join(reading.unclear_between)
        return Decision.ask(f"You mention orders {orders}. Which one is this about?", 0.4)

    refunds = conversation.calls_to(REFUND_TOOL)
    if refunds:
        return _refund_outcome(conversation, refunds[-1], order_id, order)

    if reading.intent is Intent.POLICY:
        policy = policy_answer(conversation) or ""
        return Decision.final(f"{summarise(order_id, order)} {policy}".strip(), 0.85)
    if reading.intent is Intent.STATUS:
        return Decision.final(summarise(order_id, order), 0.9)
    return _refund(conversation, reading, order_id, order)


def _refund(
    conversation: Conversation,
    reading: TaskReading,
    order_id: str,
    order: dict[str, Any],
) -> Reply:
    veto = conversation.latest_operator
    if veto is not None and contains_phrase(veto.text, DO_NOT_REFUND_PHRASES):
        return Decision.final(
            f'Refund not issued for order {order_id}: the operator said "{veto.text}".',
            0.9,
        )
    if str(order.get("status", "")).lower() in ALREADY_REFUNDED_STATUSES:
        return Decision.final(
            f"Order {order_id} was already refunded, so I did not issue another refund.",
            0.9,
        )
    total = order.get("total")
    if not isinstance(total, int | float) or isinstance(total, bool):
        return Decision.ask(
            f"Order {order_id} has no total I can refund. What amount should I refund?",
            0.2,
        )
    amount = float(total) if reading.amount is None else reading.amount
    if amount > float(total):
        money = format_money(float(total), order.get("currency"))
        return Decision.ask(
            f"The customer asks for more than the order total ({money}). How much should I "
            "refund?",
            0.3,
        )
    return ToolCall(
        REFUND_TOOL,
        {
            "order_id": order_id,
            "amount": amount,
            "reason": refund_reason(reading.intent_source or conversation.task),
            "confidence": 0.9,
        },
    )


def policy_answer(conversation: Conversation) -> str | None:
    """The first two sentences of the retrieved document the question is about."""
    topic = policy_topic(conversation.task)
    text = conversation.document(topic) if topic else None
    if text is None and conversation.knowledge:
        text = conversation.knowledge[0][1]
    if not text:
        return None
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    return " ".join(sentences[:2])


def refund_reason(message: str) -> str:
    """A short reason for the refund: what follows "because", else the first sentence."""
    match = _REASON_RE.search(message)
    if match:
        why = match.group("why").strip()
        return first_sentence(why[:1].upper() + why[1:])
    return first_sentence(f"Customer request: {message}")


def summarise(order_id: str, order: dict[str, Any]) -> str:
    """One line on the order, built only from the lookup result."""
    status = order.get("status") or "in an unknown state"
    parts = [f"Order {order_id} is {status}"]
    details = []
    items = order.get("items")
    if isinstance(items, list):
        details.append(f"{len(items)} item{'s' if len(items) != 1 else ''}")
    total = order.get("total")
    if isinstance(total, int | float) and not isinstance(total, bool):
        details.append(f"total {format_money(float(total), order.get('currency'))}")
    if details:
        parts.append(": " + ", ".join(details))
    return "".join(parts) + "."


def _latest_call(conversation: Conversation, tool: str, order_id: str) -> ToolExchange | None:
    calls = [c for c in conversation.calls_to(tool) if str(c.arguments.get("order_id")) == order_id]
    return calls[-1] if calls else None


def _retry_failed_lookup(conversation: Conversation, lookup: ToolExchange) -> bool:
    """After a failed lookup, an operator reply means "try again" (e.g. the system is back)."""
    result = lookup.result
    return result is not None and not result.ok and conversation.operator_spoke_after(result.index)


def _refund_outcome(
    conversation: Conversation,
    refund: ToolExchange,
    order_id: str,
    order: dict[str, Any],
) -> Decision:
    result = refund.result
    if result is None:
        return Decision.ask(
            f"The refund for order {order_id} has no result yet. How should I proceed?",
            0.2,
        )
    if result.ok:
        details = result.result if isinstance(result.result, dict) else {}
        amount = details.get("amount", refund.arguments.get("amount", order.get("total", 0)))
        money = format_money(float(amount), details.get("currency") or order.get("currency"))
        refund_id = details.get("refund_id") or details.get("id") or "unknown"
        return Decision.final(
            f"Refund of {money} issued for order {order_id} (refund id {refund_id}).", 0.92
        )
    error = result.error or "unknown error"
    if "reject" in error.lower():
        reason = _rejection_reason(conversation, error, refund.index)
        return Decision.final(
            f"The refund for order {order_id} was not issued: "
            f'the operator rejected it ("{reason}").',
            0.9,
        )
    return Decision.ask(
        f"The refund for order {order_id} failed ({error}). How should I proceed?", 0.2
    )


def _rejection_reason(conversation: Conversation, error: str, after: int) -> str:
    """The operator's words: the text after ':' in the error, else their latest message."""
    _, _, tail = error.partition(":")
    if tail.strip():
        return tail.strip()
    later = [m.text for m in conversation.operator_messages if m.index > after]
    return later[-1] if later else error
