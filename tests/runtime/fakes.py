"""In-memory doubles for the runtime's ports: a scripted model, a run store, a clock, a
team budget and a response cache.

They implement the same protocols as the production adapters, so the engine under test
cannot tell them apart; they also record what the engine did, for the assertions.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from agentdesk.runtime import tokens
from agentdesk.runtime.llm import DETERMINISTIC, ModelReply, Sampling, TokenLogprob, ToolCallRequest
from agentdesk.runtime.ports import LedgerEntry
from agentdesk.runtime.profiles import ModelProfile
from agentdesk.runtime.state import EscalationRequest, RunState, StepRecord

_call_ids = itertools.count(1)


# -- model ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCall:
    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    max_tokens: int
    sampling: Sampling = DETERMINISTIC


Scripted = ModelReply | BaseException


class ScriptedModel:
    """``ModelClient`` that plays back queued replies (or raises queued exceptions).

    A reply queued for a model name is used for calls to that model; otherwise the global
    queue is used. A reply built with an empty ``model`` takes the requested model's name,
    so prices apply. An unscripted call fails the test loudly. With ``prompt_usage`` a
    reply's ``tokens_in`` is the runtime's own estimate of the prompt it was sent
    (``tokens.count_prompt``), as a real endpoint would count it; a number instead of True
    scales it: 2 is a server that reports twice the tokens we estimate.
    """

    def __init__(
        self,
        *,
        on_call: Callable[[ModelCall], None] | None = None,
        prompt_usage: bool | float = False,
    ) -> None:
        self.calls: list[ModelCall] = []
        self._global: deque[Scripted] = deque()
        self._by_model: dict[str, deque[Scripted]] = {}
        self.on_call = on_call
        self.prompt_usage = prompt_usage

    def script(self, *items: Scripted, model: str | None = None) -> ScriptedModel:
        queue = self._global if model is None else self._by_model.setdefault(model, deque())
        queue.extend(items)
        return self

    @property
    def remaining(self) -> int:
        return len(self._global) + sum(len(q) for q in self._by_model.values())

    def complete(
        self,
        *,
        profile: ModelProfile,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        max_tokens: int,
        sampling: Sampling = DETERMINISTIC,
    ) -> ModelReply:
        model = profile.name
        call = ModelCall(model, copy.deepcopy(messages), copy.deepcopy(tools), max_tokens,
                         sampling)
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)
        queue = self._by_model.get(model)
        if not queue:
            queue = self._global
        if not queue:
            raise AssertionError(f"unscripted model call #{len(self.calls)} to {model}")
        item = queue.popleft()
        if isinstance(item, BaseException):
            raise item
        if not item.model:
            item = dataclasses.replace(item, model=model)
        if self.prompt_usage:
            estimate = tokens.count_prompt(profile, messages, tools).estimate
            item = dataclasses.replace(item, tokens_in=int(estimate * float(self.prompt_usage)))
        return item

    # -- what a test asserts on

    def last_messages(self) -> list[dict[str, Any]]:
        return self.calls[-1].messages

    def samples(self) -> list[ModelCall]:
        """The calls made at a sampling temperature (the agreement signal's)."""
        return [c for c in self.calls if c.sampling.temperature is not None]


def tool_call_reply(
    name: str,
    args: dict[str, Any] | None = None,
    *,
    confidence: float | None = 0.9,
    call_id: str | None = None,
    raw_arguments: str | None = None,
    model: str = "",
    tokens_in: int = 100,
    tokens_out: int = 20,
    tokens_cached: int = 0,
) -> ModelReply:
    """A reply asking for one tool call; ``confidence`` goes into the arguments as the
    runtime's tool schemas require (None leaves it out)."""
    arguments = dict(args or {})
    if confidence is not None:
        arguments["confidence"] = confidence
    return ModelReply(
        model=model,
        content=None,
        tool_calls=[
            ToolCallRequest(
                id=call_id or f"call_{next(_call_ids)}",
                name=name,
                arguments=raw_arguments if raw_arguments is not None else json.dumps(arguments),
            )
        ],
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        tokens_cached=tokens_cached,
    )


def decision_reply(
    answer: str | None,
    *,
    question: str | None = None,
    confidence: float = 0.9,
    model: str = "",
    tokens_in: int = 100,
    tokens_out: int = 20,
    tokens_cached: int = 0,
) -> ModelReply:
    """A structured final decision, as the decision schema asks for."""
    content = json.dumps({"answer": answer, "question": question, "confidence": confidence})
    return raw_reply(
        content,
        model=model,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        tokens_cached=tokens_cached,
    )


def raw_reply(
    content: str | None,
    *,
    model: str = "",
    tokens_in: int = 100,
    tokens_out: int = 20,
    tokens_cached: int = 0,
) -> ModelReply:
    return ModelReply(
        model=model,
        content=content,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        tokens_cached=tokens_cached,
    )


def with_logprobs(reply: ModelReply, tokens: list[tuple[str, float]]) -> ModelReply:
    """``reply`` carrying token log-probabilities: ``tokens`` are (token text, probability)
    and, joined, are the content as generated. A reply with text content must be given
    tokens that spell it (a prompted tool call's reply has none: its JSON is in them)."""
    text = "".join(token for token, _ in tokens)
    assert reply.content is None or reply.content == text, (reply.content, text)
    logprobs = [TokenLogprob(token=token, logprob=math.log(p) if p > 0 else -9999.0,
                             bytes=list(token.encode())) for token, p in tokens]
    return dataclasses.replace(reply, logprobs=logprobs)


def prompted_call_reply(
    name: str, args: dict[str, Any], *, confidence: float = 0.9, call_id: str | None = None,
    tool_probability: float = 1.0, args_probability: float = 1.0, other_probability: float = 0.5,
) -> ModelReply:
    """A tool call written as the prompted protocol's JSON, with logprobs: every token of
    the tool's name has ``tool_probability``, every token of the arguments object
    ``args_probability``, every other token (keys, punctuation, confidence)
    ``other_probability``."""
    arguments = json.dumps(args)
    tokens = [('{"tool": ', other_probability), (f'"{name}"', tool_probability),
              (', "arguments": ', other_probability)]
    tokens += [(arguments[i:i + 4], args_probability) for i in range(0, len(arguments), 4)]
    tokens += [(f', "confidence": {confidence}', other_probability), ("}", other_probability)]
    reply = tool_call_reply(name, args, confidence=confidence, call_id=call_id)
    return with_logprobs(reply, tokens)


# -- store ---------------------------------------------------------------------------------


class SimulatedCrash(BaseException):
    """The worker died here. BaseException, so no ``except Exception`` can swallow it."""


class InMemoryStore:
    """``RunStore`` keeping everything in lists and dicts.

    ``crash_after_commit=N`` dies right after the Nth commit (1-based) is saved;
    ``crash_after_ledger_begin`` / ``crash_after_ledger_finish`` die right after the
    ledger write for that tool name. Each crash fires once.
    """

    def __init__(
        self,
        *,
        crash_after_commit: int | None = None,
        crash_after_ledger_begin: str | None = None,
        crash_after_ledger_finish: str | None = None,
        after_commit: Callable[[InMemoryStore], None] | None = None,
    ) -> None:
        self.steps: list[StepRecord] = []
        self.snapshots: list[dict[str, Any]] = []
        self.escalations: list[EscalationRequest] = []
        self.ledger: dict[str, dict[str, Any]] = {}
        self.commits = 0
        self.crash_after_commit = crash_after_commit
        self.crash_after_ledger_begin = crash_after_ledger_begin
        self.crash_after_ledger_finish = crash_after_ledger_finish
        self.after_commit = after_commit

    def commit(
        self,
        state: RunState,
        step: StepRecord | None = None,
        escalation: EscalationRequest | None = None,
    ) -> None:
        if step is not None:
            self.steps.append(step.model_copy(deep=True))
        if escalation is not None:
            self.escalations.append(escalation.model_copy(deep=True))
        self.snapshots.append(state.model_dump(mode="json"))
        self.commits += 1
        if self.after_commit is not None:
            self.after_commit(self)
        if self.crash_after_commit == self.commits:
            self.crash_after_commit = None
            raise SimulatedCrash(f"after commit {self.commits}")

    def ledger_begin(self, key: str, tool: str, args: dict[str, Any]) -> LedgerEntry | None:
        if key in self.ledger:
            row = self.ledger[key]
            return LedgerEntry(status=row["status"], result=row["result"], error=row["error"])
        self.ledger[key] = {
            "tool": tool,
            "args": copy.deepcopy(args),
            "status": "started",
            "result": None,
            "error": "",
        }
        if self.crash_after_ledger_begin == tool:
            self.crash_after_ledger_begin = None
            raise SimulatedCrash(f"after ledger_begin of {tool}")
        return None

    def ledger_finish(self, key: str, result: dict[str, Any] | None, error: str) -> None:
        row = self.ledger[key]
        row.update(
            status="failed" if error else "succeeded", result=copy.deepcopy(result), error=error
        )
        if self.crash_after_ledger_finish == row["tool"]:
            self.crash_after_ledger_finish = None
            raise SimulatedCrash(f"after ledger_finish of {row['tool']}")

    # -- what a test asserts on

    def last_checkpoint(self) -> RunState:
        """The run as a fresh worker would load it: the last committed snapshot."""
        return RunState.model_validate(self.snapshots[-1])

    def kinds(self) -> list[str]:
        return [str(s.kind) for s in self.steps]

    def steps_of(self, kind: str) -> list[StepRecord]:
        return [s for s in self.steps if s.kind == kind]


# -- clock ---------------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- team budget and response cache --------------------------------------------------------


class InMemoryTeamBudget:
    """``TeamBudget`` over one Decimal limit; records every reserve and settle, in order."""

    def __init__(self, limit_usd: Decimal | str = "10") -> None:
        self.limit = Decimal(limit_usd)
        self.spent = Decimal("0")
        self.held = Decimal("0")
        self.events: list[tuple[str, Decimal] | tuple[str, Decimal, Decimal]] = []

    def reserve(self, amount_usd: Decimal) -> bool:
        if self.spent + self.held + amount_usd > self.limit:
            self.events.append(("refused", amount_usd))
            return False
        self.held += amount_usd
        self.events.append(("reserve", amount_usd))
        return True

    def settle(self, reserved_usd: Decimal, actual_usd: Decimal) -> None:
        self.held -= reserved_usd
        self.spent += actual_usd
        self.events.append(("settle", reserved_usd, actual_usd))


class DictResponseCache:
    """``ResponseCache`` in a dict; entries expire on an injected clock."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.clock = clock or (lambda: 0.0)
        self.entries: dict[str, tuple[dict[str, Any], float]] = {}
        self.gets: list[str] = []
        self.sets: list[tuple[str, int]] = []

    def get(self, key: str) -> dict[str, Any] | None:
        self.gets.append(key)
        entry = self.entries.get(key)
        if entry is None or self.clock() >= entry[1]:
            return None
        return copy.deepcopy(entry[0])

    def set(self, key: str, value: dict[str, Any], ttl_seconds: int) -> None:
        self.sets.append((key, ttl_seconds))
        self.entries[key] = (copy.deepcopy(value), self.clock() + ttl_seconds)
