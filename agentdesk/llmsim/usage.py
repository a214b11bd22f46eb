"""Token accounting: deterministic token estimates and simulated prompt caching.

Real tokenizers are not needed for a test double; what matters is that counts grow with
the text, never change for the same text, and that caching behaves like OpenAI's
(a reused prefix of at least 1024 tokens is discounted in 128-token steps).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 3
"""Framing tokens per message (role, separators), as OpenAI's own counting recipe adds."""

REASONING_TOKENS = {"none": 0, "minimal": 0, "low": 24, "medium": 96, "high": 256}
"""Hidden tokens a ``reasoning`` model spends per call, by ``reasoning_effort``; like
OpenAI's they count in ``completion_tokens`` (and are billed as output) and in the
``max_completion_tokens`` cap. Medium is OpenAI's default effort."""
DEFAULT_REASONING_EFFORT = "medium"

CACHE_MIN_PREFIX_TOKENS = 1024
CACHE_GRANULARITY_TOKENS = 128


def count_text_tokens(text: str) -> int:
    """About one token per four characters, rounded up, so any non-empty text costs >= 1."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_text(content: Any) -> str:
    """Plain text of a message ``content``: a string, or the text parts of a parts list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "".join(p for p in parts if isinstance(p, str))
    return ""


def message_tokens(message: dict[str, Any]) -> int:
    """Tokens of one message: its text, the names and arguments of its tool calls, framing."""
    tokens = MESSAGE_OVERHEAD_TOKENS + count_text_tokens(content_text(message.get("content")))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        tokens += count_text_tokens(str(function.get("name", "")))
        tokens += count_text_tokens(str(function.get("arguments", "")))
    return tokens


def tools_tokens(tools: Sequence[dict[str, Any]]) -> int:
    """Tokens of the tool schemas, which OpenAI places in front of the messages."""
    return count_text_tokens(_canonical(list(tools))) if tools else 0


def prompt_tokens(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> int:
    """Tokens of the whole prompt: tool schemas plus every message."""
    return tools_tokens(tools) + sum(message_tokens(m) for m in messages)


def completion_tokens(content: str | None, tool_calls: Sequence[dict[str, Any]]) -> int:
    """Tokens the model generated: reply text plus tool names and JSON arguments."""
    tokens = count_text_tokens(content or "")
    for call in tool_calls:
        tokens += count_text_tokens(call["function"]["name"])
        tokens += count_text_tokens(call["function"]["arguments"])
    return tokens


def reasoning_tokens(effort: str | None) -> int:
    """Reasoning tokens of one call at ``effort`` (the default effort when unset)."""
    return REASONING_TOKENS.get(effort or DEFAULT_REASONING_EFFORT, 0)


def usage_block(prompt: int, completion: int, cached: int, reasoning: int = 0) -> dict[str, Any]:
    """The ``usage`` object of a chat completion, with the detail fields OpenAI sends;
    ``completion`` includes the ``reasoning`` tokens, as OpenAI counts them."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class PromptCache:
    """Remembers prompt prefixes seen by this process, like OpenAI's automatic prompt cache.

    Each request's prefixes (tool schemas + first k messages, per model) are stored as
    rolling hashes in a bounded LRU; a later request is discounted by its longest prefix
    already seen, provided that prefix is long enough to have been cached.
    """

    def __init__(
        self,
        max_entries: int = 20_000,
        min_prefix_tokens: int = CACHE_MIN_PREFIX_TOKENS,
        granularity: int = CACHE_GRANULARITY_TOKENS,
    ) -> None:
        self._entries: OrderedDict[str, None] = OrderedDict()
        self._max_entries = max_entries
        self._min_prefix_tokens = min_prefix_tokens
        self._granularity = granularity
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def cached_tokens(
        self,
        model: str,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]],
    ) -> int:
        """Cached prompt tokens for this request, then remember its prefixes for later ones."""
        digest = hashlib.sha256(_canonical([model, list(tools)]).encode()).digest()
        running_tokens = tools_tokens(tools)
        prefixes: list[tuple[str, int]] = []
        for message in messages:
            digest = hashlib.sha256(digest + _canonical(message).encode()).digest()
            running_tokens += message_tokens(message)
            prefixes.append((digest.hex(), running_tokens))

        with self._lock:
            best = 0
            for key, tokens in prefixes:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    best = tokens
            for key, _tokens in prefixes:
                self._entries[key] = None
                self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

        if best < self._min_prefix_tokens:
            return 0
        return best // self._granularity * self._granularity
