"""The bounded agent loop: retrieve first, reason second, act last.

``Engine.advance`` moves one run forward from its checkpoint until it ends, waits for a
human, or uses up its time slice. Every step is committed (step row + state) before the
next one starts, so a crash loses at most the step in flight, and a tool call already in
the ledger is never executed twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import budget, router
from .agent import AgentSpec
from .llm import (
    FinalDecision,
    InvalidOutput,
    ModelClient,
    ModelError,
    ModelReply,
    estimate_tokens,
    parse_decision,
    parse_tool_arguments,
)
from .outcomes import Decision, Reason, RunStatus, StepKind
from .ports import RunStore
from .state import (
    EscalationRequest,
    PolicySnapshot,
    RunState,
    StepRecord,
    ToolCallProposal,
    Usage,
)
from .tools import ToolContext, ToolError, run_tool

FINAL_ANSWER = "final_answer"
REPAIR_PROMPT = (
    "Your previous reply could not be used ({error}). Reply again: either call one of the "
    "tools, or answer with JSON matching the decision schema."
)


@dataclass
class Proposal:
    """What the deciding model wants next: a tool call or a final decision."""

    tier: str
    call: ToolCallProposal | None = None
    decision: FinalDecision | None = None

    @property
    def confidence(self) -> float:
        if self.call is not None:
            return self.call.confidence if self.call.confidence is not None else 0.0
        return self.decision.confidence if self.decision else 0.0

    def summary(self) -> dict[str, Any]:
        if self.call is not None:
            args = {k: v for k, v in self.call.args.items() if k != "confidence"}
            return {"tool_call": {"name": self.call.tool, "args": args}}
        assert self.decision is not None
        return self.decision.model_dump()


class RunEnded(Exception):
    """Internal: the run reached a terminal or waiting state inside a helper."""


class Engine:
    def __init__(
        self,
        agent: AgentSpec,
        policy: PolicySnapshot,
        model: ModelClient,
        store: RunStore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.agent = agent
        self.policy = policy
        self.model = model
        self.store = store
        self.clock = clock
        self._mark = clock()

    # -- driving -----------------------------------------------------------------------

    def advance(self, state: RunState, slice_seconds: float = 30.0) -> RunState:
        """Run until the run ends, waits for a human, or ``slice_seconds`` pass."""
        if state.status.is_terminal or (
            state.status == RunStatus.WAITING_HUMAN and state.human_input is None
        ):
            return state  # nothing to do: re-running it would repeat committed steps
        started = self._mark = self.clock()
        state.status = RunStatus.RUNNING
        state.reason = Reason.NONE
        try:
            if state.human_input is not None:
                self._apply_human_input(state)
            if state.phase == "retrieve":
                self._retrieve(state)
            while state.status == RunStatus.RUNNING:
                if self.clock() - started >= slice_seconds:
                    break
                if state.phase == "act" and state.pending_call is not None:
                    self._execute(state, state.pending_call)
                elif state.phase == "decide" and state.pending_call is not None:
                    self._decide(state, state.pending_call)
                else:
                    self._reason(state)
        except RunEnded:
            pass
        return state

    # -- phases ------------------------------------------------------------------------

    def _retrieve(self, state: RunState) -> None:
        query = self.agent.task_message(state.input)
        step = StepRecord(index=state.step_count, kind=StepKind.RETRIEVAL, name="retrieve")
        step.args = {"query": query}
        try:
            docs = self.agent.retrieve(state.input)
            step.result = {"documents": [d["source"] for d in docs]}
        except Exception as exc:  # no context is honest; invented context is not
            docs = []
            step.error = f"retrieval failed: {exc}"
        state.context = docs
        state.messages = [
            {"role": "system", "content": self.agent.system_prompt(docs)},
            {"role": "user", "content": query},
        ]
        state.phase = "reason"
        self._commit(state, step)

    def _reason(self, state: RunState) -> None:
        chosen: tuple[Proposal, StepRecord] | None = None
        for tier, model in router.tiers(self.policy):
            if chosen is not None:  # the cheaper tier was unsure: keep its step, ask higher
                self._commit(state, chosen[1])
            chosen = self._ask(state, tier, model)
            if chosen[0].confidence >= self.policy.confidence_threshold:
                break
        assert chosen is not None
        self._act_on(state, *chosen)

    def _act_on(self, state: RunState, proposal: Proposal, model_step: StepRecord) -> None:
        """Record the accepted decision with its model step, then act on it.

        The decision is checkpointed as the pending call (a final answer as ``FINAL_ANSWER``)
        in phase ``decide``, so a run that crashes right after this commit acts on the same
        decision when it resumes: it neither asks the model again nor skips the approval check.
        """
        call, decision = proposal.call, proposal.decision
        if call is not None:
            state.messages.append(_assistant_tool_call(call))
            state.pending_call = call
        else:
            assert decision is not None
            state.messages.append({"role": "assistant", "content": decision.model_dump_json()})
            state.pending_call = ToolCallProposal(
                call_id="",
                tool=FINAL_ANSWER,
                args={"answer": decision.answer, "question": decision.question},
                confidence=decision.confidence,
            )
        state.phase = "decide"
        self._commit(state, model_step)
        self._decide(state, state.pending_call)

    def _decide(self, state: RunState, call: ToolCallProposal) -> None:
        """Finish, escalate, or clear ``call`` for execution: a function of the checkpoint."""
        confidence = call.confidence if call.confidence is not None else 0.0
        confident = confidence >= self.policy.confidence_threshold
        if call.tool == FINAL_ANSWER:
            answer, question = call.args.get("answer"), call.args.get("question")
            if answer is None or not str(answer).strip():
                question = question or "The agent could not decide. How should it proceed?"
                self._escalate(state, Reason.LOW_CONFIDENCE, question, None, call.confidence)
            elif not confident:
                final = call.model_copy(update={"args": {"answer": answer}})
                question = question or "The agent is unsure of this answer. Send it?"
                self._escalate(state, Reason.LOW_CONFIDENCE, question, final)
            else:
                self._finish(state, RunStatus.SUCCEEDED, Reason.NONE, answer=answer)
            return
        state.phase = "act"
        if self.agent.tools.get(call.tool) is None:
            return  # _execute reports the unknown tool back to the model
        if not confident:
            question = f"The agent is unsure about calling {call.tool}. Should it go ahead?"
            self._escalate(state, Reason.LOW_CONFIDENCE, question, call)
        elif self._needs_approval(call):
            question = f"Approve {call.tool} with these arguments?"
            self._escalate(state, Reason.APPROVAL_REQUIRED, question, call)

    def _execute(self, state: RunState, call: ToolCallProposal) -> None:
        tool = self.agent.tools.get(call.tool)
        if tool is None:  # the model's mistake, not a tool's failure: let it choose again
            self._tool_result(state, call, None, f"unknown tool {call.tool!r}", escalate=False)
            return
        key = f"{state.run_id}:{state.step_count}"
        args = {k: v for k, v in call.args.items() if k != "confidence"}
        entry = self.store.ledger_begin(key, tool.name, args)
        if entry is not None and entry.status == "succeeded":
            self._tool_result(state, call, entry.result, "", replayed=True)
            return
        if entry is not None and entry.status == "failed":
            self._tool_result(state, call, None, entry.error, replayed=True)
            return
        if entry is not None and tool.side_effect:
            question = (
                f"{tool.name} started before a crash and its outcome is unknown. "
                "Check it, then reply with what happened, approve to run it again, or abort."
            )
            self._escalate(state, Reason.TOOL_OUTCOME_UNKNOWN, question, call)
            return
        started = time.perf_counter()
        try:
            result = run_tool(tool, ToolContext(state.run_id, key), args)
            error = ""
        except ToolError as exc:
            result, error = None, str(exc)
        self.store.ledger_finish(key, result, error)
        latency = int((time.perf_counter() - started) * 1000)
        self._tool_result(state, call, result, error, latency_ms=latency)

    def _tool_result(
        self,
        state: RunState,
        call: ToolCallProposal,
        result: dict[str, Any] | None,
        error: str,
        *,
        replayed: bool = False,
        latency_ms: int = 0,
        escalate: bool = True,
    ) -> None:
        payload = {"ok": False, "error": error} if error else {"ok": True, "result": result}
        state.messages.append(
            {"role": "tool", "tool_call_id": call.call_id, "content": json.dumps(payload)}
        )
        state.pending_call = None
        state.phase = "reason"
        step = StepRecord(
            index=state.step_count,
            kind=StepKind.TOOL,
            name=call.tool,
            result=result,
            args={k: v for k, v in call.args.items() if k != "confidence"},
            error=error,
            latency_ms=latency_ms,
            confidence=call.confidence,
        )
        if replayed:
            step.args["replayed_from_ledger"] = True
        self._commit(state, step)
        if error and escalate:
            question = f"{call.tool} failed: {error}. Reply with instructions, or abort."
            self._escalate(state, Reason.TOOL_FAILED, question, None)

    # -- model calls -------------------------------------------------------------------

    def _ask(self, state: RunState, tier: str, model: str) -> tuple[Proposal, StepRecord]:
        """One decision from ``model`` (not yet committed), with one repair attempt."""
        messages = list(state.messages)
        for attempt in (1, 2):
            reply = self._call(state, tier, model, messages)
            step = self._model_step(state, reply, tier)
            try:
                proposal = _proposal_from(reply, tier)
            except InvalidOutput as exc:
                step.error = str(exc)
                step.result = {"content": reply.content}
                self._commit(state, step)
                if attempt == 2:
                    self._finish(state, RunStatus.FAILED, Reason.INVALID_OUTPUT, error=str(exc))
                messages = [
                    *messages,
                    {"role": "assistant", "content": reply.content or ""},
                    {"role": "user", "content": REPAIR_PROMPT.format(error=exc)},
                ]
                continue
            step.confidence = proposal.confidence
            step.result = proposal.summary()
            return proposal, step
        raise AssertionError("unreachable")

    def _call(
        self, state: RunState, tier: str, model: str, messages: list[dict[str, Any]]
    ) -> ModelReply:
        tools = self.agent.tools.openai_schemas()
        breach = budget.check_before_model_call(
            state, self.policy, model, estimate_tokens(messages, tools)
        )
        if breach is not None:
            self._finish(state, RunStatus.FAILED, breach, error=f"{breach.value} reached")
        try:
            reply = self.model.complete(
                model=model,
                messages=messages,
                tools=tools,
                max_tokens=self.policy.max_output_tokens,
            )
        except ModelError as exc:
            step = StepRecord(
                index=state.step_count,
                kind=StepKind.MODEL,
                name=model,
                model=model,
                args={"tier": tier},
                error=str(exc),
            )
            self._commit(state, step)
            self._finish(state, RunStatus.FAILED, Reason.MODEL_FAILED, error=str(exc))
        return reply

    def _model_step(self, state: RunState, reply: ModelReply, tier: str) -> StepRecord:
        usage = Usage(
            tokens_in=reply.tokens_in,
            tokens_out=reply.tokens_out,
            tokens_cached=reply.tokens_cached,
            cost_usd=self._cost(reply),
        )
        return StepRecord(
            index=state.step_count,
            kind=StepKind.MODEL,
            name=reply.model,
            model=reply.model,
            usage=usage,
            latency_ms=reply.latency_ms,
            args={"tier": tier},
        )

    def _cost(self, reply: ModelReply) -> Decimal:
        price = self.policy.prices.get(reply.model)
        if price is None:
            return Decimal("0")
        return price.cost(reply.tokens_in, reply.tokens_cached, reply.tokens_out)

    def _needs_approval(self, call: ToolCallProposal) -> bool:
        if call.tool in self.policy.approval_tools:
            return True
        tool = self.agent.tools.get(call.tool)
        amount = call.args.get("amount")
        limit = self.policy.approval_amount_usd
        if tool is None or not tool.side_effect or limit is None or amount is None:
            return False
        try:
            return Decimal(str(amount)) > limit
        except ArithmeticError:
            return True  # an amount we cannot read is one a human should see

    # -- human input -------------------------------------------------------------------

    def _apply_human_input(self, state: RunState) -> None:
        human = state.human_input
        assert human is not None
        state.human_input = None
        call = state.pending_call
        step = StepRecord(
            index=state.step_count,
            kind=StepKind.HUMAN,
            name=human.decision,
            args={"operator": human.operator, "message": human.message},
        )
        state.phase = "reason"
        if human.decision == Decision.ABORT:
            self._commit(state, step)
            self._finish(state, RunStatus.ABORTED, Reason.ABORTED_BY_OPERATOR)
        if human.decision == Decision.APPROVE:
            if call is None:
                state.messages.append({"role": "user", "content": "Operator: Approved. Go on."})
            elif call.tool == FINAL_ANSWER:
                self._commit(state, step)
                self._finish(state, RunStatus.SUCCEEDED, Reason.NONE, answer=call.args["answer"])
            else:
                state.phase = "act"
        else:
            verb = "rejected" if human.decision == Decision.REJECT else "answered instead"
            if call is not None and call.tool != FINAL_ANSWER:
                error = f"{verb} by operator: {human.message}".strip()
                if human.decision != Decision.REJECT:
                    error = "not executed: the operator answered instead"
                content = json.dumps({"ok": False, "error": error})
                state.messages.append(
                    {"role": "tool", "tool_call_id": call.call_id, "content": content}
                )
            prefix = "Rejected. " if human.decision == Decision.REJECT else ""
            state.messages.append({"role": "user", "content": f"Operator: {prefix}{human.message}"})
            state.pending_call = None
        self._commit(state, step)

    # -- endings -----------------------------------------------------------------------

    def _escalate(
        self,
        state: RunState,
        reason: Reason,
        question: str,
        call: ToolCallProposal | None,
        confidence: float | None = None,
    ) -> None:
        state.status = RunStatus.WAITING_HUMAN
        state.reason = reason
        state.phase = "await_human"
        state.pending_call = call
        step = StepRecord(
            index=state.step_count,
            kind=StepKind.ESCALATION,
            name=reason.value,
            args={"question": question},
            confidence=call.confidence if call is not None else confidence,
        )
        escalation = EscalationRequest(
            reason=reason,
            question=question,
            proposed_tool=call.tool if call is not None else "",
            proposed_args={
                k: v for k, v in (call.args if call else {}).items() if k != "confidence"
            },
            confidence=step.confidence,
            context=state.context,
        )
        self._commit(state, step, escalation)
        raise RunEnded

    def _finish(
        self,
        state: RunState,
        status: RunStatus,
        reason: Reason,
        *,
        answer: str | None = None,
        error: str = "",
    ) -> None:
        state.status = status
        state.reason = reason
        state.answer = answer
        state.phase = "done"
        state.pending_call = None
        step = StepRecord(
            index=state.step_count,
            kind=StepKind.FINAL,
            name=status.value,
            result={"answer": answer} if answer is not None else None,
            error=error,
        )
        self._commit(state, step)
        raise RunEnded

    def _commit(
        self, state: RunState, step: StepRecord, escalation: EscalationRequest | None = None
    ) -> None:
        now = self.clock()
        state.active_seconds += now - self._mark
        self._mark = now
        state.step_count = step.index + 1
        if step.kind == StepKind.MODEL:
            state.usage.add(step.usage)
        self.store.commit(state, step, escalation)


def _proposal_from(reply: ModelReply, tier: str) -> Proposal:
    if reply.tool_calls:
        first = reply.tool_calls[0]
        args = parse_tool_arguments(first)
        confidence = args.get("confidence")
        call = ToolCallProposal(
            call_id=first.id,
            tool=first.name,
            args=args,
            confidence=float(confidence) if isinstance(confidence, int | float) else None,
        )
        return Proposal(tier=tier, call=call)
    return Proposal(tier=tier, decision=parse_decision(reply.content))


def _assistant_tool_call(call: ToolCallProposal) -> dict[str, Any]:
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
