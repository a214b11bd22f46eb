"""The support-refunds agent's tools: read the knowledge base, read orders, issue refunds.

``issue_refund`` is the side effect. Besides its ledger row it appends to a refunds journal
(``$AGENTDESK_DATA_DIR/refunds.jsonl``), an outside witness tests read to prove that a
refund is issued exactly once whatever happens to the workers.

Fault injection (the order service is a stand-in for a real backend): order 9999 always
answers 503, order 9998 answers after ``$AGENTDESK_TOOL_DELAY_9998`` seconds (default: past
the tool's timeout), order 9997 answers 503 to its first two lookups in each process.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agentdesk.runtime.tools import ToolContext, ToolError, ToolRegistry, TransientToolError

registry = ToolRegistry()
ORDERS_FILE = Path(__file__).parent / "orders.json"
FAILING_ORDERS = {"9999": "order service unavailable (HTTP 503)"}
SLOW_ORDER = "9998"
LOOKUP_TIMEOUT_S = 10.0
FLAKY_ORDERS = {"9997": 2}  # order → transient failures before it answers, per process
FAULTY_ORDERS = {  # what the slow and the flaky order answer once they do
    order_id: {
        "order_id": order_id,
        "status": "shipped",
        "total": 40.0,
        "currency": "USD",
        "customer": "Grace Hopper",
        "items": [{"sku": "TEA-02", "name": "Tea sampler", "qty": 2, "price": 20.0}],
    }
    for order_id in ("9997", SLOW_ORDER)
}
flaky_lookups: Counter[str] = Counter()  # tests clear it to replay the failures
_flaky_lock = threading.Lock()


class SearchPolicyArgs(BaseModel):
    query: str = Field(min_length=1, max_length=500)


class LookupOrderArgs(BaseModel):
    order_id: str = Field(pattern=r"^\d{3,8}$")


class IssueRefundArgs(BaseModel):
    order_id: str = Field(pattern=r"^\d{3,8}$")
    amount: float = Field(gt=0, le=100_000)
    reason: str = Field(default="", max_length=500)


@cache
def _orders() -> dict[str, dict[str, Any]]:
    return json.loads(ORDERS_FILE.read_text())


def refunds_journal() -> Path:
    return Path(os.environ.get("AGENTDESK_DATA_DIR", "var")) / "refunds.jsonl"


@registry.tool(args=SearchPolicyArgs)
def search_policy(ctx: ToolContext, args: SearchPolicyArgs) -> dict[str, Any]:
    """Search the support policy documents (refunds, returns, shipping)."""
    hits = ctx.knowledge.search(args.query)
    return {"documents": [{"source": h.source, "text": h.text} for h in hits]}


@registry.tool(args=LookupOrderArgs, timeout_s=LOOKUP_TIMEOUT_S)
def lookup_order(ctx: ToolContext, args: LookupOrderArgs) -> dict[str, Any]:
    """Look up an order by its number: status, total, items and customer."""
    if args.order_id in FAILING_ORDERS:
        raise TransientToolError(FAILING_ORDERS[args.order_id])
    if args.order_id == SLOW_ORDER:
        time.sleep(float(os.environ.get("AGENTDESK_TOOL_DELAY_9998", LOOKUP_TIMEOUT_S + 2)))
        return dict(FAULTY_ORDERS[SLOW_ORDER])
    if args.order_id in FLAKY_ORDERS:
        with _flaky_lock:
            flaky_lookups[args.order_id] += 1
            seen = flaky_lookups[args.order_id]
        if seen <= FLAKY_ORDERS[args.order_id]:
            raise TransientToolError("order service unavailable (HTTP 503)")
        return dict(FAULTY_ORDERS[args.order_id])
    order = _orders().get(args.order_id)
    if order is None:
        raise ToolError(f"order {args.order_id} not found")
    return dict(order)


@registry.tool(args=IssueRefundArgs, side_effect=True)
def issue_refund(ctx: ToolContext, args: IssueRefundArgs) -> dict[str, Any]:
    """Refund an amount of an order to the customer's original payment method."""
    order = _orders().get(args.order_id)
    if order is None:
        raise ToolError(f"order {args.order_id} not found")
    if args.amount > order["total"]:
        raise ToolError(f"amount {args.amount} exceeds the order total {order['total']}")
    refund = {
        "refund_id": "rf_" + ctx.idempotency_key.replace(":", "_"),
        "order_id": args.order_id,
        "amount": args.amount,
        "idempotency_key": ctx.idempotency_key,
    }
    journal = refunds_journal()
    journal.parent.mkdir(parents=True, exist_ok=True)
    with journal.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(json.dumps(refund) + "\n")
    return refund
