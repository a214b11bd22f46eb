"""The logprobs confidence signal: the probability of the tokens that carry the decision.

An endpoint asked for ``logprobs`` returns one log-probability per generated token of the
message *content* (``ModelReply.logprobs``, the tokens as generated). The signal is the
joint probability of the tokens that say what the model decided, ``exp(Σ logprob)`` over
exactly these tokens:

- **a decision** (the decision JSON: ``{"answer": …, "question": …, "confidence": …}``):
  the tokens of the value of ``"answer"`` — the string with its quotes, or ``null`` when
  the model chose to ask instead. Not the keys, not the punctuation around them, not the
  question's wording, not the self-reported number;
- **a tool call written in the content** (the prompted tool protocol,
  ``{"tool": …, "arguments": {…}, "confidence": …}``): the tokens of the value of
  ``"tool"`` (the name) and of the value of ``"arguments"`` (the whole object: argument
  names and values), minus the tokens of a ``"confidence"`` member inside ``arguments``;
- **a native tool call** (``tool_calls``): OpenAI returns log-probabilities for
  ``content`` only, never for a tool call's name or arguments, so there is nothing to
  read and the signal is missing (None). A policy that wants logprobs on tool calls uses
  a profile with ``tool_calling = prompted``.

A token counts when any of its bytes falls inside a counted value and none inside the
excluded confidence (a token straddling a value and its surrounding punctuation counts:
it was generated with the value). The JSON is found the way the gateway finds it
(``json_text``): after any ``<think>`` block, the first ``{`` that starts a complete
object, so prose or a code fence around it is left out. When the reply's JSON says
something else than the proposal the engine read (another tool, no ``answer`` key), or
no token falls inside the values, or a log-probability is not finite, the signal is
missing rather than guessed.

Why the joint probability rather than a per-token average: a tool call is decided in a
few tokens (the tool's name, an order id, an amount) and one unsure token among them —
50 or 500 — is exactly the doubt to surface; an average would dilute it among the sure
ones. The price is that a long free-text answer has a lower joint probability than a
short one, even when every token is likely; the calibration (per agent and tier, from
operators' labels) sets the threshold on the combined value with that in it.
"""

from __future__ import annotations

import json
import math
from json.decoder import scanstring
from typing import Any

from .json_text import MAX_ATTEMPTS
from .llm import ModelReply, TokenLogprob

Span = tuple[int, int]  # [start, end) character offsets in the generated text
_WHITESPACE = " \t\n\r"
_THINK_END = "</think>"


def decision_probability(reply: ModelReply, *, tool: str | None) -> float | None:
    """The logprobs signal for ``reply``: ``tool`` is the name of the tool the engine read
    from it, None when it read a decision. None when the signal is missing."""
    tokens = reply.logprobs
    if not tokens:
        return None
    text, token_spans = _text_and_spans(tokens)
    members = _first_object_members(text)
    if members is None:
        return None
    counted, excluded = _decision_spans(text, members, tool)
    if not counted:
        return None
    total = 0.0
    used = 0
    for token, span in zip(tokens, token_spans, strict=True):
        if _overlaps(span, counted) and not _overlaps(span, excluded):
            if not math.isfinite(token.logprob):
                return None
            total += min(token.logprob, 0.0)
            used += 1
    return math.exp(total) if used else None


def _decision_spans(
    text: str, members: dict[str, tuple[Any, Span]], tool: str | None
) -> tuple[list[Span], list[Span]]:
    """(counted, excluded) spans of the decision in the object's ``members``."""
    if tool is None:
        if "answer" not in members or isinstance(members.get("tool", (None,))[0], str):
            return [], []
        return [members["answer"][1]], []
    named = members.get("tool")
    if named is None or named[0] != tool:
        return [], []  # the content is not the call the engine read (e.g. a native call)
    counted, excluded = [named[1]], []
    arguments = members.get("arguments")
    if arguments is not None:
        counted.append(arguments[1])
        inner = _members_at(text, arguments[1][0]) if isinstance(arguments[0], dict) else None
        if inner is not None and "confidence" in inner:
            excluded.append(inner["confidence"][1])
    return counted, excluded


def _text_and_spans(tokens: list[TokenLogprob]) -> tuple[str, list[Span]]:
    """The generated text, and each token's character span in it (from its bytes, so a
    token holding part of a multi-byte character lands where the character is)."""
    chunks = [bytes(t.bytes) if t.bytes is not None else t.token.encode(errors="replace")
              for t in tokens]
    try:
        text = b"".join(chunks).decode()
    except UnicodeDecodeError:  # bytes that are not text: the tokens' own strings
        chunks = [t.token.encode(errors="replace") for t in tokens]
        text = b"".join(chunks).decode()
    char_of: list[int] = []  # byte offset → the character it belongs to
    for index, char in enumerate(text):
        char_of.extend([index] * len(char.encode(errors="replace")))
    char_of.append(len(text))
    spans, offset = [], 0
    for chunk in chunks:
        end = offset + len(chunk)
        spans.append((char_of[offset], char_of[end - 1] + 1 if chunk else char_of[offset]))
        offset = end
    return text, spans


def _first_object_members(text: str) -> dict[str, tuple[Any, Span]] | None:
    """Top-level members (value, span of the value) of the first JSON object in ``text``
    after any ``<think>`` block."""
    think = text.lower().rfind(_THINK_END)
    start = text.find("{", think + len(_THINK_END) if think >= 0 else 0)
    for _ in range(MAX_ATTEMPTS):
        if start < 0:
            return None
        members = _members_at(text, start)
        if members is not None:
            return members
        start = text.find("{", start + 1)
    return None


def _members_at(text: str, start: int) -> dict[str, tuple[Any, Span]] | None:
    """The members of the JSON object starting at ``start``, each with its value's span;
    None when no complete object starts there."""
    decoder = json.JSONDecoder()
    try:
        whole, _end = decoder.raw_decode(text, start)
    except (json.JSONDecodeError, ValueError):
        return None
    if not isinstance(whole, dict):
        return None
    members: dict[str, tuple[Any, Span]] = {}
    index = _skip(text, start + 1)
    try:
        while text[index] != "}":
            key, index = scanstring(text, index + 1)
            index = _skip(text, _skip(text, index) + 1)  # past the colon
            value, end = decoder.raw_decode(text, index)
            members[key] = (value, (index, end))
            index = _skip(text, end)
            if text[index] == ",":
                index = _skip(text, index + 1)
    except (json.JSONDecodeError, ValueError, IndexError):
        return None
    return members


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _WHITESPACE:
        index += 1
    return index


def _overlaps(span: Span, spans: list[Span]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in spans)
