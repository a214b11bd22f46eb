"""Was one decision of the agent right? The benchmark's stand-in for an operator's label.

An operator labels a decision by what it proposed: approved as proposed = right. Here the
task's expected outcome (``tasks.jsonl``) plays the operator, decision by decision, from
the model step's recorded proposal (``Step.result``):

- ``lookup_order(order_id)``: right when it is an order the expected outcome is about
  (refunded, proposed, or named in the expected answer); when the outcome names none
  (a failed lookup, a question which order), any order number the message names;
- ``issue_refund(order_id, amount)``: right when that refund is expected (issued, or
  proposed for approval);
- a final answer: right when the task expects the run to succeed and the answer holds
  every expected text;
- a question to the operator (no answer): not judged (None). A question always reaches a
  human whatever its confidence, so no threshold lets it act wrongly.

Only the benchmark knows the expected outcomes; the simulator never sees them.
"""

from __future__ import annotations

import re
from typing import Any

_ORDER_RE = re.compile(r"\border (\d{4,6})\b", re.IGNORECASE)
_NUMBER_RE = re.compile(r"(?<![\d$€£.,])\d{4,6}(?!\d|[.,]\d)")


def judge(task: dict[str, Any], result: dict[str, Any] | None) -> bool | None:
    """True / False for an acting decision, None for a question or an unreadable step."""
    if not result:
        return None
    expected = task["expected"]
    call = result.get("tool_call")
    if call is not None:
        args = call.get("args") or {}
        if call.get("name") == "issue_refund":
            return _refund_expected(expected, args)
        if call.get("name") == "lookup_order":
            targets = target_orders(expected)
            return str(args.get("order_id")) in (targets or _NUMBER_RE.findall(task["message"]))
        return None
    answer = result.get("answer")
    if answer is None:
        return None
    return expected["status"] == "succeeded" and all(
        text in str(answer) for text in expected.get("answer_contains", []))


def target_orders(expected: dict[str, Any]) -> set[str]:
    """The orders the expected outcome is about."""
    orders = {str(r["order_id"]) for r in expected.get("refunds", [])}
    if expected.get("proposed"):
        orders.add(str(expected["proposed"]["order_id"]))
    for text in expected.get("answer_contains", []):
        orders.update(_ORDER_RE.findall(text))
    return orders


def _refund_expected(expected: dict[str, Any], args: dict[str, Any]) -> bool:
    try:
        wanted = (str(args.get("order_id")), round(float(args.get("amount")), 2))
    except (TypeError, ValueError):
        return False
    refunds = [*expected.get("refunds", [])]
    if expected.get("proposed"):
        refunds.append(expected["proposed"])
    return any((str(r["order_id"]), round(float(r["amount"]), 2)) == wanted for r in refunds)
