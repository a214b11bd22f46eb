"""What a model reply means for the loop: a tool call or a final decision, and whether a
human must see it first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .llm import FinalDecision, ModelReply, parse_decision, parse_tool_arguments
from .state import PolicySnapshot, RunState, ToolCallProposal
from .tools import Tool

FINAL_ANSWER = "final_answer"
REPAIR_PROMPT = (
    "Your previous reply could not be used ({error}). Reply again: either call one of the "
    "tools, or answer with JSON matching the decision schema."
)
REJECTED_BEFORE = (
    "An operator rejected {tool} with these arguments earlier in this run, and the agent "
    "proposes it again. Approve it this time?"
)


@dataclass
class Proposal:
    """What the deciding model wants next: a tool call or a final decision."""

    tier: str
    call: ToolCallProposal | None = None
    decision: FinalDecision | None = None
    combined: float | None = None  # the step's confidence from its signals (``confidence``)

    @property
    def self_report(self) -> float | None:
        """The confidence the model wrote; None when it gave none we can read."""
        if self.call is not None:
            return self.call.confidence
        return self.decision.confidence if self.decision else None

    @property
    def confidence(self) -> float:
        """What the router and the approval checks compare with the threshold: the
        combined signals once measured, else the self-report (unreadable: 0)."""
        if self.combined is not None:
            return self.combined
        return self.self_report if self.self_report is not None else 0.0

    def summary(self) -> dict[str, Any]:
        if self.call is not None:
            return {"tool_call": {"name": self.call.tool, "args": without_confidence(self.call)}}
        assert self.decision is not None
        return self.decision.model_dump()

    def as_pending(self) -> ToolCallProposal:
        """The decision as the checkpoint keeps it (a final answer as ``FINAL_ANSWER``)."""
        if self.call is not None:
            if self.combined is None:
                return self.call
            return self.call.model_copy(update={"confidence": self.combined})
        assert self.decision is not None
        return ToolCallProposal(
            call_id="", tool=FINAL_ANSWER,
            args={"answer": self.decision.answer, "question": self.decision.question},
            confidence=self.confidence,
        )


def proposal_from(reply: ModelReply, tier: str) -> Proposal:
    if reply.tool_calls:
        first = reply.tool_calls[0]
        args = parse_tool_arguments(first)
        confidence = args.get("confidence")
        readable = isinstance(confidence, int | float) and 0 <= confidence <= 1
        call = ToolCallProposal(  # an unreadable confidence counts as none: not confident
            call_id=first.id, tool=first.name, args=args,
            confidence=float(confidence) if readable else None,
        )
        return Proposal(tier=tier, call=call)
    return Proposal(tier=tier, decision=parse_decision(reply.content))


def without_confidence(call: ToolCallProposal) -> dict[str, Any]:
    return {k: v for k, v in call.args.items() if k != "confidence"}


def call_signature(call: ToolCallProposal) -> str:
    return call.tool + ":" + json.dumps(without_confidence(call), sort_keys=True, default=str)


def assistant_tool_call(call: ToolCallProposal) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.tool, "arguments": json.dumps(call.args)},
            }
        ],
    }


def tool_message(call_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": json.dumps(payload, default=str)}


def needs_approval(policy: PolicySnapshot, tool: Tool | None, call: ToolCallProposal) -> bool:
    if call.tool in policy.approval_tools:
        return True
    amount = call.args.get("amount")
    limit = policy.approval_amount_usd
    if tool is None or not tool.side_effect or limit is None or amount is None:
        return False
    try:
        return Decimal(str(amount)) > limit
    except ArithmeticError:
        return True  # an amount we cannot read is one a human should see


def last_tool_error(state: RunState) -> str:
    """The error of the run's latest tool result (what a resumed ``tool_failed`` reports)."""
    for message in reversed(state.messages):
        if message.get("role") == "tool":
            try:
                return str(json.loads(message["content"]).get("error") or "")
            except (ValueError, AttributeError):
                return ""
    return ""
