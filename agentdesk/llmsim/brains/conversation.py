"""A read-only view of the app's conversation protocol, so brains never touch raw JSON.

The protocol: ``messages[0]`` is the system prompt starting ``You are the <slug> agent.``
(retrieved knowledge quoted in it one document a line, as ``[source] text``);
the first user message is the task; later user messages starting ``Operator:`` come from
a human operator; assistant ``tool_calls`` are answered by ``tool`` messages whose content
is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``. Without native
tools the same exchanges travel in the prompted protocol (see ``prompted``): calls as
assistant JSON content, results as ``Result of <tool> (call <id>): ...`` user messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..faults import strip_markers
from ..usage import content_text
from .prompted import prompted_call, prompted_result

_SLUG_RE = re.compile(r"^\s*You are the ([A-Za-z0-9][A-Za-z0-9_-]*) agent\.")
_KNOWLEDGE_RE = re.compile(r"^\[(?P<source>[^\]\n]+)\] (?P<text>.+)$", re.MULTILINE)
OPERATOR_PREFIX = "Operator:"


@dataclass(frozen=True)
class ToolResult:
    """What the app reported back for one tool call."""

    ok: bool
    result: Any
    error: str | None
    index: int
    """Position of the tool message in the conversation."""


@dataclass(frozen=True)
class ToolExchange:
    """One tool call the model made, with the app's result once it arrived."""

    call_id: str
    name: str
    arguments: dict[str, Any]
    result: ToolResult | None
    index: int
    """Position of the assistant message that made the call."""


@dataclass(frozen=True)
class OperatorMessage:
    """A human operator's answer or instruction, without the ``Operator:`` prefix."""

    text: str
    index: int


@dataclass(frozen=True)
class Conversation:
    """Everything a brain may base its reply on."""

    agent_slug: str | None
    task: str
    latest_user_text: str
    operator_messages: tuple[OperatorMessage, ...]
    exchanges: tuple[ToolExchange, ...]
    knowledge: tuple[tuple[str, str], ...] = ()
    """``(source, text)`` of the documents the system prompt quotes as ``[source] text``."""
    tools: tuple[dict[str, Any], ...] = ()
    """The function tools the request offers, in OpenAI's shape (the generic brain picks
    one by its name and description, and fills its arguments from its schema)."""

    @property
    def latest_operator(self) -> OperatorMessage | None:
        return self.operator_messages[-1] if self.operator_messages else None

    def calls_to(self, tool: str) -> list[ToolExchange]:
        """Calls to ``tool`` in conversation order."""
        return [exchange for exchange in self.exchanges if exchange.name == tool]

    def document(self, source: str) -> str | None:
        """Text of the quoted knowledge document ``source``, if the prompt has it."""
        return next((text for name, text in self.knowledge if name == source), None)

    def operator_spoke_after(self, index: int) -> bool:
        """True when an operator message follows position ``index``."""
        return any(message.index > index for message in self.operator_messages)


def agent_slug(messages: Sequence[dict[str, Any]]) -> str | None:
    """The ``<slug>`` of ``You are the <slug> agent.`` in the leading system message."""
    if not messages or messages[0].get("role") not in {"system", "developer"}:
        return None
    match = _SLUG_RE.match(content_text(messages[0].get("content")))
    return match.group(1).lower() if match else None


def read_conversation(
    messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] = ()
) -> Conversation:
    """Parse OpenAI-style messages into a Conversation (fault markers removed from text);
    ``tools``: the function tools offered with them."""
    task: str | None = None
    latest_user = ""
    operators: list[OperatorMessage] = []
    calls: dict[str, tuple[str, dict[str, Any], int]] = {}
    results: dict[str, ToolResult] = {}
    unanswered: dict[str, list[str]] = {}  # prompted calls awaiting a result, per tool

    for index, message in enumerate(messages):
        role = message.get("role")
        text = strip_markers(content_text(message.get("content")))
        reported = prompted_result(text) if role == "user" else None
        if reported is not None and unanswered.get(reported[0]):
            results[unanswered[reported[0]].pop(0)] = _tool_result(reported[2], index)
        elif role == "user":
            latest_user = text
            if text.startswith(OPERATOR_PREFIX):
                operators.append(OperatorMessage(text[len(OPERATOR_PREFIX) :].strip(), index))
            elif task is None:
                task = text
        elif role == "assistant":
            prompted = None if message.get("tool_calls") else prompted_call(text)
            if prompted is not None:
                key = f"prompted-{index}"
                calls[key] = (prompted[0], prompted[1], index)
                unanswered.setdefault(prompted[0], []).append(key)
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                calls[str(call.get("id"))] = (
                    str(function.get("name", "")),
                    _arguments(function.get("arguments")),
                    index,
                )
        elif role == "tool":
            results[str(message.get("tool_call_id"))] = _tool_result(text, index)

    exchanges = tuple(
        ToolExchange(call_id, name, arguments, results.get(call_id), index)
        for call_id, (name, arguments, index) in calls.items()
    )
    system = content_text(messages[0].get("content")) if messages else ""
    return Conversation(
        agent_slug=agent_slug(messages),
        task=task or "",
        latest_user_text=latest_user,
        operator_messages=tuple(operators),
        exchanges=exchanges,
        knowledge=tuple((m["source"], m["text"]) for m in _KNOWLEDGE_RE.finditer(system))
        if agent_slug(messages)
        else (),
        tools=tuple(tools),
    )


def _arguments(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _tool_result(text: str, index: int) -> ToolResult:
    """Read the app's ``{"ok": ...}`` envelope; anything else counts as a failed call."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return ToolResult(False, None, f"unreadable tool result: {text[:80]}", index)
    if isinstance(payload, dict) and isinstance(payload.get("ok"), bool):
        error = payload.get("error")
        return ToolResult(
            payload["ok"], payload.get("result"), None if error is None else str(error), index
        )
    return ToolResult(True, payload, None, index)
