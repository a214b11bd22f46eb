"""What ``run_agent`` returns: the settled run, read for assertions.

The assertions are on what matters to an operator: how the run ended, which tools it
called (and which it only proposed), why it asked a human, and whether it stayed inside
its bounds. Each failing assertion prints the run's trace, so a red test says what the
agent did instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentdesk.runtime.outcomes import BOUND_REASONS, Reason, RunStatus
from agentdesk.runtime.state import EscalationRequest, PolicySnapshot, RunState, StepRecord, Usage

from .store import InMemoryStore

if TYPE_CHECKING:
    from .run import OperatorDecision


@dataclass(frozen=True)
class ToolCall:
    """A tool call the agent proposed. ``executed``: it reached the tool (its ledger row
    exists); a call a human rejected, or one still waiting for approval, was not."""

    name: str
    args: dict[str, Any]
    executed: bool
    ok: bool | None  # None: no result yet (waiting, or the run ended first)
    result: Any = None
    error: str = ""
    confidence: float | None = None

    def matches(self, name: str, args: dict[str, Any]) -> bool:
        """Same tool, and every given argument has the given value (others may differ)."""
        return self.name == name and all(self.args.get(k, _MISSING) == v
                                         for k, v in args.items())


_MISSING = object()
# what ``runtime.human`` answers for a call an operator rejected, answered or took over
_NOT_RUN_BY_HUMAN = ("rejected by operator", "not executed:")


@dataclass
class AgentResult:
    state: RunState
    store: InMemoryStore
    policy: PolicySnapshot  # the one in force at the end (an extend_budget raises it)
    decisions: list[OperatorDecision] = field(default_factory=list)  # the ones applied
    decisions_left: int = 0  # scripted decisions the run never needed

    # -- the run -------------------------------------------------------------------------

    @property
    def status(self) -> RunStatus:
        return self.state.status

    @property
    def reason(self) -> Reason:
        return self.state.reason

    @property
    def answer(self) -> str | None:
        return self.state.answer

    @property
    def steps(self) -> list[StepRecord]:
        return self.store.steps

    @property
    def escalations(self) -> list[EscalationRequest]:
        """Each time the run asked a human: reason, question, proposed tool and arguments."""
        return self.store.escalations

    @property
    def usage(self) -> Usage:
        return self.state.usage

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Every tool call the agent (or a rule) proposed, in order, executed or not."""
        ledger = list(self.store.ledger.values())
        results: dict[str, dict[str, Any]] = {}
        for message in self.state.messages:
            if message.get("role") == "tool":
                results[message.get("tool_call_id", "")] = json.loads(message["content"])
        calls: list[ToolCall] = []
        for message in self.state.messages:
            for tc in message.get("tool_calls") or []:
                args = json.loads(tc["function"]["arguments"] or "{}")
                confidence = args.pop("confidence", None)
                name = tc["function"]["name"]
                payload = results.get(tc["id"])
                # executions are in the ledger in the order the calls were made; a call an
                # operator stopped has the same tool and arguments as a later one may
                stopped = payload is not None and str(payload.get("error") or "").startswith(
                    _NOT_RUN_BY_HUMAN)
                executed = (not stopped and bool(ledger) and ledger[0]["tool"] == name
                            and ledger[0]["args"] == args)
                row = ledger.pop(0) if executed else None
                ok = None if payload is None else bool(payload.get("ok"))
                calls.append(ToolCall(
                    name, args, executed, ok,
                    result=payload.get("result") if payload else (row or {}).get("result"),
                    error=str(payload.get("error") or "") if payload else "",
                    confidence=confidence if isinstance(confidence, int | float) else None))
        return calls

    def trace(self) -> str:
        """The run's steps, one a line: what a failing assertion prints."""
        lines = [f"run {self.state.run_id}: {self.status.value}"
                 + (f" / {self.reason.value}" if self.reason else "")]
        for step in self.steps:
            detail = step.error and f"error: {step.error}" or _short(step.result)
            args = _short({k: v for k, v in step.args.items() if k != "why"})
            lines.append(f"  #{step.index} {step.kind.value} {step.name} {args} -> {detail}")
        return "\n".join(lines)

    def _fail(self, message: str) -> AssertionError:
        return AssertionError(f"{message}\n{self.trace()}")

    # -- assertions (each returns the result, so they chain) -----------------------------

    def assert_succeeded(self, answer: str | None = None) -> AgentResult:
        """The run ended ``succeeded`` (with exactly this answer, when one is given)."""
        if self.status != RunStatus.SUCCEEDED:
            raise self._fail("expected the run to succeed")
        if answer is not None and self.answer != answer:
            raise self._fail(f"expected the answer {answer!r}, got {self.answer!r}")
        return self

    def assert_failed(self, reason: Reason | str | None = None) -> AgentResult:
        """The run ended ``failed`` (for this reason code, when one is given)."""
        if self.status != RunStatus.FAILED or (reason is not None and self.reason != reason):
            raise self._fail(f"expected the run to fail{_with(reason)}")
        return self

    def assert_waiting(self, reason: Reason | str | None = None) -> AgentResult:
        """The run is waiting for a human (the scripted decisions ran out)."""
        if self.status != RunStatus.WAITING_HUMAN or (
                reason is not None and self.reason != reason):
            raise self._fail(f"expected the run to wait for a human{_with(reason)}")
        return self

    def assert_escalated(self, reason: Reason | str | None = None, *, tool: str | None = None,
                         question: str | None = None) -> AgentResult:
        """The run asked a human at least once: for this reason, proposing this tool, with
        a question containing this text (each only when given)."""
        for esc in self.escalations:
            if ((reason is None or esc.reason == reason)
                    and (tool is None or esc.proposed_tool == tool)
                    and (question is None or question.lower() in esc.question.lower())):
                return self
        wanted = ", ".join(f"{k}={v!r}" for k, v in
                           (("reason", reason), ("tool", tool), ("question", question))
                           if v is not None)
        raise self._fail(f"expected an escalation ({wanted or 'any'}); got "
                         f"{[(e.reason.value, e.proposed_tool) for e in self.escalations]}")

    def assert_not_escalated(self) -> AgentResult:
        if self.escalations:
            raise self._fail(f"expected no escalation; got "
                             f"{[(e.reason.value, e.question) for e in self.escalations]}")
        return self

    def assert_called(self, tool: str, /, **args: Any) -> AgentResult:
        """``tool`` was executed, with these argument values (others may be anything)."""
        if not any(c.executed and c.matches(tool, args) for c in self.tool_calls):
            raise self._fail(f"expected a call to {tool}{_args(args)}; calls: {self._calls()}")
        return self

    def assert_not_called(self, tool: str, /, **args: Any) -> AgentResult:
        """``tool`` was never executed (with these argument values, when given); being
        proposed and then rejected or still awaiting approval does not count as called."""
        if any(c.executed and c.matches(tool, args) for c in self.tool_calls):
            raise self._fail(f"expected no call to {tool}{_args(args)}; calls: {self._calls()}")
        return self

    def assert_proposed(self, tool: str, /, **args: Any) -> AgentResult:
        """The agent asked for ``tool`` (executed or not)."""
        if not any(c.matches(tool, args) for c in self.tool_calls):
            raise self._fail(f"expected {tool}{_args(args)} to be proposed; calls: "
                             f"{self._calls()}")
        return self

    def assert_within_bounds(self) -> AgentResult:
        """No bound was hit (steps, time, tokens, cost, team budget, loop) and the usage is
        inside the policy's token and cost ceilings."""
        hit = [r.value for r in (self.reason, *(e.reason for e in self.escalations))
               if r.value in BOUND_REASONS]
        if hit:
            raise self._fail(f"the run hit a bound: {', '.join(hit)}")
        if self.usage.total_tokens > self.policy.max_tokens:
            raise self._fail(f"{self.usage.total_tokens} tokens > {self.policy.max_tokens}")
        if self.usage.cost_usd > self.policy.max_cost_usd:
            raise self._fail(f"${self.usage.cost_usd} > ${self.policy.max_cost_usd}")
        if self.state.active_seconds > self.policy.max_seconds:
            raise self._fail(f"{self.state.active_seconds:.1f}s > {self.policy.max_seconds}s")
        return self

    def _calls(self) -> list[str]:
        return [f"{c.name}{_args(c.args)}{'' if c.executed else ' (not executed)'}"
                for c in self.tool_calls]


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, default=str) if value not in (None, {}) else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _with(reason: Reason | str | None) -> str:
    return f" with reason {str(reason)!r}" if reason is not None else ""


def _args(args: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")"
