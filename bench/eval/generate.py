"""Generate ``tasks.jsonl``, the shipped evaluation set: ``python -m bench.eval.generate``.

Each task is a customer message for the ``support-refunds`` agent and the outcome a
competent support agent would reach with no operator in the loop:

- ``status``: the run's final status (``succeeded`` or ``waiting_human`` = escalated);
- ``reason``: for an escalation, why (``approval_required``, ``low_confidence``,
  ``tool_failed``);
- ``refunds``: the refunds that must have been issued (order and amount), none otherwise;
- ``proposed``: for an approval, the refund the operator is asked to approve;
- ``answer_contains``: text the final answer must contain.

The orders are the agent's shipped order data (``agents/support_refunds/orders.json``) and
its fault-injected orders: 9999 (backend down: 503 on every try), 9997 (two 503s per
process, then answers; only used for status questions because it cannot be refunded).
The mix is about two thirds plain requests (status, refunds under and over the approval
amount), a quarter messages a keyword reader gets wrong (negations, policy questions,
several orders, partial amounts, hedges), and the rest unknown orders, a backend that is
down and requests without an order number (see ``CATEGORIES``). Compound requests (two
asks in one message) are beyond the agent, which settles one ask per run: both policies
are expected to fail them — they show the set can tell a wrong answer from a right one.
Deterministic: a fixed seed, unique messages.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).with_name("tasks.jsonl")
SEED = 20250601

ORDERS = {
    "1001": {"status": "delivered", "total": 25.0, "item": "coffee mug"},
    "1042": {"status": "delivered", "total": 180.0, "item": "headphones"},
    "1077": {"status": "in_transit", "total": 64.5, "item": "algorithms book"},
    "2001": {"status": "delivered", "total": 1250.0, "item": "laptop"},
}
FLAKY = {"9997": {"status": "shipped", "total": 40.0, "item": "tea sampler"}}
APPROVAL_AMOUNT = 100.0
POLICY_SENTENCE = {
    "returns.md": "returned unused in their original packaging within 30 days",
    "refund-policy.md": "within 30 days of delivery",
    "shipping.md": "Standard shipping takes 3 to 7 business days",
}

CATEGORIES = {
    "status": "where is my order: answer with its status",
    "refund_under_approval": "refund ≤ $100: issued, no human",
    "refund_over_approval": "refund > $100: escalated for approval with the right amount",
    "unknown_order": "no such order: the lookup fails, escalated (tool_failed)",
    "backend_down": "order service 503 on every try: escalated (tool_failed)",
    "missing_order": "no order number: the agent must ask (low_confidence)",
    "hedged": "clear request in hedged words: same outcome as plain",
    "negated_refund": "\"I don't want a refund\", status question: no refund",
    "policy_question": "how returns/refunds/shipping work: answer from the knowledge base",
    "several_orders": "several orders, one singled out: act on that one",
    "several_orders_unclear": "several orders, none singled out: ask which (low_confidence)",
    "partial_amount": "an explicit amount: refund that, not the total",
    "compound_request": "two asks in one message: expected to fail under both policies",
}

OPENERS = ["", "Hi, ", "Hello, ", "Hey there. ", "Good morning. ", "Hi team, ", "Quick one: "]
CLOSERS = ["", " Thanks!", " Thank you.", " Cheers.", " Thanks in advance.", " Regards, Sam.",
           " - Priya", " Appreciate it."]

STATUS = [
    "Where is my order {o}?", "What's the status of order {o}?", "Has order {o} shipped yet?",
    "Can you check on order {o} for me?", "Any update on order #{o}?",
    "I'm waiting for order {o}, where is it?", "Could you tell me what happened to order {o}?",
    "Tracking for order {o} please.", "Status of {o}?", "When will order {o} get here?",
    "Is order {o} on its way?", "Please look up order {o}.", "I'd like an update on order {o}.",
    "Order {o}: what's going on with it?",
]
REFUND = [
    "I want a refund for order {o}.", "Please refund order {o}, the {item} arrived broken.",
    "I'd like my money back for order {o}.", "Refund order {o} please, I changed my mind.",
    "The {item} from order {o} is defective. Refund it please.",
    "Can I get a refund for order {o}? It's not what I expected.",
    "Please give me my money back for order {o} because the {item} stopped working.",
    "I want to return order {o} for a refund.", "Order {o} was damaged in transit, refund it.",
    "Requesting a full refund on order #{o}.", "Refund my order {o}, the {item} is faulty.",
    "I need a refund for order {o} since it was the wrong colour.",
    "Please process a refund for order {o}.", "Return and refund order {o}, it never worked.",
    "The {item} (order {o}) is cracked. I want my money back.",
    "I would like a refund for order {o}; the {item} is missing parts.",
]
HEDGED_REFUND = [
    "I think I want a refund for order {o}.", "Maybe refund order {o}? The {item} is meh.",
    "Not sure, but perhaps I should get my money back for order {o}?",
    "I guess I'd like a refund for order {o}.", "Perhaps you could refund order {o}?",
]
HEDGED_STATUS = [
    "Maybe check where order {o} is?", "I think order {o} is late, where is it?",
    "Not sure if order {o} shipped, can you check?", "Perhaps look up order {o} for me?",
    "I guess order {o} is still coming? Where is it?",
]
NEGATED = [
    "I don't want a refund, just tell me where order {o} is.",
    "No refund needed, I only want the status of order {o}.",
    "I'm not asking for my money back, where is order {o}?",
    "Not looking for a refund - has order {o} shipped?",
    "I do not want to return order {o}, I just want to know its status.",
]
POLICY_WITH_ORDER = [
    ("How do I return order {o}?", "returns.md"),
    ("What is your return policy for order {o}?", "returns.md"),
    ("How long does shipping take for order {o}?", "shipping.md"),
    ("How can I return the {item} from order {o}?", "returns.md"),
]
POLICY_NO_ORDER = [
    ("What is your refund policy?", "refund-policy.md"),
    ("How long do I have to return something?", "returns.md"),
    ("How long does standard shipping take?", "shipping.md"),
    ("What's the return policy for unused items?", "returns.md"),
    ("How long does a refund take to come back to my card?", "refund-policy.md"),
]
SEVERAL_TARGET = [
    "My orders {x} and {o} both arrived; {o} is broken, please refund it.",
    "Order {x} is fine but {o} arrived damaged. I want a refund for that one.",
    "Please refund {o}, not {x}.",
    "I placed {x} and {o}. The {item} in {o} is defective, refund it please.",
]
SEVERAL_UNCLEAR = [
    "Refund order {o} or {x}, whichever is easier.", "I want a refund for {o} or maybe {x}.",
    "One of my orders ({o}, {x}) needs a refund.", "Refund {o} or {x} please.",
]
PARTIAL = [
    "Please refund ${a} of order {o}, part of it was missing.",
    "Order {o}: I only want ${a} back for the scratched {item}.",
    "Can you refund {a} dollars on order {o}? The box was damaged.",
    "Refund ${a} for order {o}, one accessory never arrived.",
]
COMPOUND = [
    "Refund order {o} and also tell me where order {x} is.",
    "Please refund {o}, and what's the status of {x}?",
    "Two things: refund order {o}, and has {x} shipped?",
]
MISSING = [
    "I want my money back.", "Please refund my last purchase.", "Where is my order?",
    "My package never arrived, what now?", "I need a refund, the item broke.",
    "Can you check my order status?", "Refund please, it's the wrong size.",
    "The thing I bought is broken.", "Where's my stuff?", "I'd like a refund for my order.",
]


def _vary(rng: random.Random, text: str, seen: set[str]) -> str:
    for _ in range(200):
        opener = rng.choice(OPENERS)
        if opener.endswith(", ") and not text.startswith(("I ", "I'")):
            text = text[0].lower() + text[1:]
        message = (opener + text + rng.choice(CLOSERS)).strip()
        message = message[0].upper() + message[1:]
        if message not in seen:
            seen.add(message)
            return message
    raise RuntimeError(f"cannot make a unique message from {text!r}")


def _refund_outcome(order: str, amount: float) -> dict:
    money = f"${amount:,.2f}"
    if amount > APPROVAL_AMOUNT:
        return {"status": "waiting_human", "reason": "approval_required", "refunds": [],
                "proposed": {"tool": "issue_refund", "order_id": order, "amount": amount}}
    return {"status": "succeeded", "refunds": [{"order_id": order, "amount": amount}],
            "answer_contains": [f"Refund of {money} issued for order {order}"]}


def _status_outcome(order: str, status: str) -> dict:
    return {"status": "succeeded", "refunds": [], "answer_contains": [f"Order {order} is {status}"]}


def build() -> list[dict]:
    rng = random.Random(SEED)
    seen: set[str] = set()
    tasks: list[dict] = []

    def add(category: str, template: str, expected: dict, **fields: object) -> None:
        message = _vary(rng, template.format(**fields), seen)
        tasks.append({"category": category, "message": message, "expected": expected})

    def cycle(templates: list, count: int) -> list:
        return [templates[i % len(templates)] for i in range(count)]

    everything = {**ORDERS, **FLAKY}
    status_orders = ["1001"] * 13 + ["1042"] * 13 + ["1077"] * 14 + ["2001"] * 12 + ["9997"] * 5
    for template, order in zip(cycle(STATUS, len(status_orders)), status_orders, strict=True):
        add("status", template, _status_outcome(order, everything[order]["status"]), o=order,
            item=everything[order]["item"])
    for category, orders in (("refund_under_approval", ["1001", "1077"] * 21),
                             ("refund_over_approval", ["1042", "2001"] * 16)):
        for template, order in zip(cycle(REFUND, len(orders)), orders, strict=True):
            info = ORDERS[order]
            add(category, template, _refund_outcome(order, info["total"]), o=order,
                item=info["item"])
    for i, order in enumerate(["1001", "1077", "1042", "2001", "1001"]):
        add("hedged", HEDGED_REFUND[i], _refund_outcome(order, ORDERS[order]["total"]),
            o=order, item=ORDERS[order]["item"])
        add("hedged", HEDGED_STATUS[i], _status_outcome(order, ORDERS[order]["status"]), o=order)
    for i, order in enumerate(["1077", "1001", "1042", "2001", "1077", "1001", "1042", "2001",
                               "1077"]):
        add("negated_refund", NEGATED[i % len(NEGATED)],
            _status_outcome(order, ORDERS[order]["status"]), o=order)
    for i, order in enumerate(["1042", "1001", "1077", "2001", "1077", "1042"]):
        template, doc = POLICY_WITH_ORDER[i % len(POLICY_WITH_ORDER)]
        info = ORDERS[order]
        add("policy_question", template,
            {"status": "succeeded", "refunds": [],
             "answer_contains": [f"Order {order} is {info['status']}", POLICY_SENTENCE[doc]]},
            o=order, item=info["item"])
    for template, doc in POLICY_NO_ORDER[:4]:
        add("policy_question", template,
            {"status": "succeeded", "refunds": [], "answer_contains": [POLICY_SENTENCE[doc]]})
    for i, (order, other) in enumerate([("1042", "1001"), ("1001", "1077"), ("1077", "2001"),
                                        ("2001", "1042"), ("1001", "2001"), ("1077", "1042"),
                                        ("1042", "1077"), ("1001", "1042")]):
        add("several_orders", SEVERAL_TARGET[i % len(SEVERAL_TARGET)],
            _refund_outcome(order, ORDERS[order]["total"]), o=order, x=other,
            item=ORDERS[order]["item"])
    for i, (order, amount) in enumerate([("2001", 40), ("1042", 30), ("2001", 150), ("1042", 20),
                                         ("2001", 75), ("1077", 10), ("2001", 300),
                                         ("1042", 45)]):
        add("partial_amount", PARTIAL[i % len(PARTIAL)], _refund_outcome(order, float(amount)),
            o=order, a=amount, item=ORDERS[order]["item"])
    for i, (order, other) in enumerate([("1001", "1042"), ("1077", "1001"), ("2001", "1077"),
                                        ("1042", "2001"), ("1001", "1077"), ("1042", "1077")]):
        add("several_orders_unclear", SEVERAL_UNCLEAR[i % len(SEVERAL_UNCLEAR)],
            {"status": "waiting_human", "reason": "low_confidence", "refunds": []},
            o=order, x=other)
    for i, (order, other) in enumerate([("1001", "1077"), ("1077", "1042"), ("1001", "2001"),
                                        ("1077", "2001"), ("1001", "1042")]):
        expected = _refund_outcome(order, ORDERS[order]["total"])
        other_status = f"Order {other} is {ORDERS[other]['status']}"
        expected["answer_contains"] = [*expected["answer_contains"], other_status]
        add("compound_request", COMPOUND[i % len(COMPOUND)], expected, o=order, x=other)
    for template in MISSING:
        add("missing_order", template,
            {"status": "waiting_human", "reason": "low_confidence", "refunds": []})
    unknown = rng.sample([n for n in range(3000, 8999) if str(n) not in ORDERS], 12)
    for i, number in enumerate(unknown):
        template = (STATUS + REFUND)[(i * 5) % (len(STATUS) + len(REFUND))]
        add("unknown_order", template,
            {"status": "waiting_human", "reason": "tool_failed", "refunds": []},
            o=str(number), item="order")
    for i in range(6):
        template = (STATUS + REFUND)[(i * 7 + 3) % (len(STATUS) + len(REFUND))]
        add("backend_down", template,
            {"status": "waiting_human", "reason": "tool_failed", "refunds": []},
            o="9999", item="order")
    return _spread(rng, tasks)


def _spread(rng: random.Random, tasks: list[dict]) -> list[dict]:
    """Shuffle, then keep backend-down tasks apart: three failed tries each, and two in a
    row would open the lookup tool's circuit breaker (five consecutive failures) for the
    tasks after them, which is the breaker working, not what this set measures."""
    rng.shuffle(tasks)
    down = [t for t in tasks if t["category"] == "backend_down"]
    rest = [t for t in tasks if t["category"] != "backend_down"]
    step = len(rest) // (len(down) + 1)
    for i, task in enumerate(down):
        rest.insert((i + 1) * step + i, task)
    return [{"id": f"t{i + 1:03d}", **task} for i, task in enumerate(rest)]


def main() -> None:
    tasks = build()
    OUT.write_text("".join(json.dumps(t, sort_keys=True) + "\n" for t in tasks))
    print(f"wrote {len(tasks)} tasks to {OUT}")


if __name__ == "__main__":
    main()
