"""Applying an operator's decision to the checkpoint, so the run resumes where it paused."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .outcomes import Decision, Phase
from .proposals import FINAL_ANSWER, call_signature, tool_message
from .state import HumanInput, RunState, ToolCallProposal


@dataclass(frozen=True)
class HumanEffect:
    """What the engine does after the decision is applied and recorded."""

    finish_answer: str | None = None
    abort: bool = False


def apply(state: RunState, human: HumanInput) -> HumanEffect:
    call = state.pending_call
    state.phase = Phase.REASON
    decision = Decision(human.decision)
    if decision == Decision.ABORT:
        return HumanEffect(abort=True)
    if decision == Decision.TAKE_OVER:
        answer = human.message or json.dumps(human.result or {}, default=str)
        if call is not None and call.tool != FINAL_ANSWER:
            state.messages.append(tool_message(call.call_id, {"ok": False, "error":
                                  "not executed: an operator took over"}))
        state.pending_call = None
        return HumanEffect(finish_answer=answer)
    if decision == Decision.EXTEND_BUDGET:
        state.call_counts.clear()
        state.stale_results = 0
        state.phase = Phase.DECIDE if call is not None else Phase.REASON
        return HumanEffect()
    if decision == Decision.APPROVE:
        if call is None:
            state.messages.append({"role": "user", "content": "Operator: Approved. Go on."})
        elif call.tool == FINAL_ANSWER:
            state.pending_call = None
            return HumanEffect(finish_answer=str(call.args.get("answer") or ""))
        else:
            if human.args is not None:
                _edit_call(state, call, human.args)
            state.phase = Phase.ACT
        return HumanEffect()
    # reject or reply: the call is not made; the agent hears why and goes on
    if call is not None and call.tool != FINAL_ANSWER:
        error = (f"rejected by operator: {human.message}".strip()
                 if decision == Decision.REJECT
                 else "not executed: the operator answered instead")
        if decision == Decision.REJECT and call_signature(call) not in state.rejected_calls:
            state.rejected_calls.append(call_signature(call))  # remembered for the run
        state.messages.append(tool_message(call.call_id, {"ok": False, "error": error}))
    prefix = "Rejected. " if decision == Decision.REJECT else ""
    state.messages.append({"role": "user", "content": f"Operator: {prefix}{human.message}"})
    state.pending_call = None
    return HumanEffect()


def _edit_call(state: RunState, call: ToolCallProposal, args: dict) -> None:
    """Edit & approve: the call runs with the operator's arguments, and the transcript says so."""
    edited = {**args, "confidence": call.args.get("confidence", 1.0)}
    state.pending_call = call.model_copy(update={"args": edited})
    for message in reversed(state.messages):
        for tc in message.get("tool_calls") or []:
            if tc.get("id") == call.call_id:
                tc["function"]["arguments"] = json.dumps(edited)
                return
