"""Model doubles: replies played back from a queue, or computed by a function.

Modelled on Pydantic AI's ``TestModel`` / ``FunctionModel``: an agent's test should pin
down what the model says, so that what it checks is the agent (its tools, its policy, its
escalations) and the engine around it, never the luck of a real model. Both doubles
implement the runtime's ``ModelClient`` protocol, so the real ``Engine`` cannot tell them
from the gateway, and both record every call (``calls``) for assertions.

The reply builders (``answer``, ``ask``, ``call``) write replies in the shapes the engine
asks a model for: a tool call whose arguments carry ``confidence``, or the decision object
``{"answer", "question", "confidence"}``.
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
from typing import Any

from agentdesk.runtime import tokens
from agentdesk.runtime.llm import (
    DETERMINISTIC,
    ModelReply,
    Sampling,
    TokenLogprob,
    ToolCallRequest,
)
from agentdesk.runtime.profiles import ModelProfile

_call_ids = itertools.count(1)
OPERATOR_PREFIX = "Operator:"


# -- what a model was asked ----------------------------------------------------------------


@dataclass(frozen=True)
class ToolResultSeen:
    """A tool result as the model saw it in the conversation (``ok`` False: an error)."""

    tool: str
    args: dict[str, Any]
    ok: bool
    result: Any
    error: str


@dataclass(frozen=True)
class ModelCall:
    """One request the engine made: what a ``FunctionModel`` function decides from, and
    what a test asserts on afterwards (``model.calls``)."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    max_tokens: int
    sampling: Sampling = DETERMINISTIC

    @property
    def task(self) -> str:
        """The task message (the first user message)."""
        for message in self.messages:
            if message.get("role") == "user":
                return str(message.get("content") or "")
        return ""

    @property
    def system(self) -> str:
        """The system prompt: the instructions and the retrieved knowledge."""
        first = self.messages[0] if self.messages else {}
        return str(first.get("content") or "") if first.get("role") == "system" else ""

    @property
    def tool_names(self) -> list[str]:
        return [tool["function"]["name"] for tool in self.tools]

    @property
    def operator_messages(self) -> list[str]:
        """What operators said (replies, rejections), without the ``Operator:`` prefix."""
        return [str(m["content"])[len(OPERATOR_PREFIX):].strip() for m in self.messages
                if m.get("role") == "user"
                and str(m.get("content") or "").startswith(OPERATOR_PREFIX)]

    @property
    def tool_results(self) -> list[ToolResultSeen]:
        """Every tool result so far, in order, with the call it answers."""
        calls: dict[str, tuple[str, dict[str, Any]]] = {}
        seen: list[ToolResultSeen] = []
        for message in self.messages:
            for tc in message.get("tool_calls") or []:
                try:
                    args = json.loads(tc["function"]["arguments"] or "{}")
                except (ValueError, TypeError):
                    args = {}
                args = {k: v for k, v in args.items() if k != "confidence"}
                calls[tc["id"]] = (tc["function"]["name"], args)
            if message.get("role") == "tool":
                tool, args = calls.get(message.get("tool_call_id", ""), ("", {}))
                payload = json.loads(message.get("content") or "{}")
                seen.append(ToolResultSeen(tool, args, bool(payload.get("ok")),
                                           payload.get("result"), payload.get("error") or ""))
        return seen

    @property
    def last_tool_result(self) -> ToolResultSeen | None:
        results = self.tool_results
        return results[-1] if results else None

    def called(self, tool: str) -> bool:
        """True when the conversation already holds a result of ``tool``."""
        return any(result.tool == tool for result in self.tool_results)


# -- reply builders ------------------------------------------------------------------------


def raw_reply(
    content: str | None,
    *,
    model: str = "",
    tokens_in: int = 100,
    tokens_out: int = 20,
    tokens_cached: int = 0,
) -> ModelReply:
    """A reply with this content as is (e.g. something that is not the decision JSON)."""
    return ModelReply(model=model, content=content, tokens_in=tokens_in,
                      tokens_out=tokens_out, tokens_cached=tokens_cached)


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
    return raw_reply(content, model=model, tokens_in=tokens_in, tokens_out=tokens_out,
                     tokens_cached=tokens_cached)


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
    request = ToolCallRequest(
        id=call_id or f"call_{next(_call_ids)}",
        name=name,
        arguments=raw_arguments if raw_arguments is not None else json.dumps(arguments),
    )
    return ModelReply(model=model, content=None, tool_calls=[request], tokens_in=tokens_in,
                      tokens_out=tokens_out, tokens_cached=tokens_cached)


def answer(text: str, confidence: float = 0.9, **usage: Any) -> ModelReply:
    """The model's final answer (confident by default: the run can end on it)."""
    return decision_reply(text, confidence=confidence, **usage)


def ask(question: str, confidence: float = 0.3, **usage: Any) -> ModelReply:
    """The model asks a question instead of answering: the run goes to a human."""
    return decision_reply(None, question=question, confidence=confidence, **usage)


def call(tool: str, args: dict[str, Any] | None = None, confidence: float = 0.9,
         **options: Any) -> ModelReply:
    """The model calls ``tool`` with ``args`` (see ``tool_call_reply`` for ``options``)."""
    return tool_call_reply(tool, args, confidence=confidence, **options)


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
    pieces = [('{"tool": ', other_probability), (f'"{name}"', tool_probability),
              (', "arguments": ', other_probability)]
    pieces += [(arguments[i:i + 4], args_probability) for i in range(0, len(arguments), 4)]
    pieces += [(f', "confidence": {confidence}', other_probability), ("}", other_probability)]
    reply = tool_call_reply(name, args, confidence=confidence, call_id=call_id)
    return with_logprobs(reply, pieces)


# -- the doubles ---------------------------------------------------------------------------


class _RecordingModel:
    """What both doubles share: the call log, and replies named after the model asked."""

    def __init__(self, *, on_call: Callable[[ModelCall], None] | None = None,
                 prompt_usage: bool | float = False) -> None:
        self.calls: list[ModelCall] = []
        self.on_call = on_call
        self.prompt_usage = prompt_usage

    def _record(self, profile: ModelProfile, messages: list[dict[str, Any]],
                tools: list[dict[str, Any]], max_tokens: int, sampling: Sampling) -> ModelCall:
        # deep copies: the engine goes on mutating its transcript after the call
        request = ModelCall(profile.name, copy.deepcopy(messages), copy.deepcopy(tools),
                            max_tokens, sampling)
        self.calls.append(request)
        if self.on_call is not None:
            self.on_call(request)
        return request

    def _deliver(self, reply: ModelReply, profile: ModelProfile,
                 messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelReply:
        """A reply built without a model name takes the requested one, so prices apply;
        with ``prompt_usage`` its input tokens are the runtime's own estimate of the prompt
        (as a real endpoint counts it), times the number given."""
        if not reply.model:
            reply = dataclasses.replace(reply, model=profile.name)
        if self.prompt_usage:
            estimate = tokens.count_prompt(profile, messages, tools).estimate
            reply = dataclasses.replace(reply, tokens_in=int(estimate * float(self.prompt_usage)))
        return reply

    # -- what a test asserts on

    def last_messages(self) -> list[dict[str, Any]]:
        return self.calls[-1].messages

    def samples(self) -> list[ModelCall]:
        """The calls made at a sampling temperature (the agreement signal's)."""
        return [c for c in self.calls if c.sampling.temperature is not None]


Scripted = ModelReply | BaseException


class ScriptedModel(_RecordingModel):
    """``ModelClient`` that plays back queued replies (or raises queued exceptions).

    ``ScriptedModel(call(...), answer(...))`` queues replies for any model; ``script(...,
    model=name)`` queues them for calls to that model only (a tier), which take precedence.
    An unscripted call fails the test loudly: a test that does not say what the model does
    next has not pinned the behaviour down. ``prompt_usage``: see ``_RecordingModel``.
    """

    def __init__(
        self,
        *replies: Scripted,
        on_call: Callable[[ModelCall], None] | None = None,
        prompt_usage: bool | float = False,
    ) -> None:
        super().__init__(on_call=on_call, prompt_usage=prompt_usage)
        self._global: deque[Scripted] = deque(replies)
        self._by_model: dict[str, deque[Scripted]] = {}

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
        self._record(profile, messages, tools, max_tokens, sampling)
        queue = self._by_model.get(profile.name) or self._global
        if not queue:
            raise AssertionError(f"unscripted model call #{len(self.calls)} to {profile.name}")
        item = queue.popleft()
        if isinstance(item, BaseException):
            raise item
        return self._deliver(item, profile, messages, tools)


class FunctionModel(_RecordingModel):
    """``ModelClient`` whose every reply is ``fn(request)``: for behaviour that depends on
    the conversation (call a tool until it answers, then summarise the result), which a
    fixed queue cannot express. ``fn`` may raise (e.g. ``ModelError``) to fail the call."""

    def __init__(
        self,
        fn: Callable[[ModelCall], ModelReply],
        *,
        on_call: Callable[[ModelCall], None] | None = None,
        prompt_usage: bool | float = False,
    ) -> None:
        super().__init__(on_call=on_call, prompt_usage=prompt_usage)
        self.fn = fn

    def complete(
        self,
        *,
        profile: ModelProfile,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        max_tokens: int,
        sampling: Sampling = DETERMINISTIC,
    ) -> ModelReply:
        request = self._record(profile, messages, tools, max_tokens, sampling)
        return self._deliver(self.fn(request), profile, messages, tools)
