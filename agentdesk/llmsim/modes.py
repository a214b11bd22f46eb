"""Serving modes: one tier behaving like a different kind of endpoint, chosen by model name.

Real endpoints differ in what they accept, and the gateway must shape its requests for
each. A mode is a suffix of the model name, so any test (or ``make run`` pointed at the
simulator) can pick one without a flag or a second server:

    <tier>[:<mode>]...        e.g. ``sim-small:reasoning``, ``sim-small:json-object:no-tools``

``reasoning``
    An OpenAI reasoning model: refuses ``max_tokens``, a ``temperature`` other than 1 and
    ``logprobs`` with OpenAI's exact 400 errors; accepts ``max_completion_tokens`` and
    ``reasoning_effort``, and reports ``completion_tokens_details.reasoning_tokens``.
``json-object``
    A llama.cpp-style server: ``response_format`` may be ``text`` or ``json_object`` only
    (``json_schema`` is a 400), and its errors (context overflow too) have llama.cpp's shape.
``no-tools``
    A chat template without tools: ``tools``, ``tool_choice`` and ``role: tool`` messages
    are refused, so only the prompted tool protocol works.
``no-usage``
    A server (or proxy) that never returns ``usage``, like the ``nousage`` fault on every
    call of every conversation.
``ctx<N>``
    A context window of N tokens (e.g. ``ctx2048``), to provoke an overflow cheaply.

Modes change what is accepted and how usage is reported, never how well the tier reads a
conversation: the declared error rates stay those of the tier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_CONTEXT_RE = re.compile(r"^ctx(\d{3,7})$")


class Mode(StrEnum):
    REASONING = "reasoning"
    JSON_OBJECT = "json-object"
    NO_TOOLS = "no-tools"
    NO_USAGE = "no-usage"


@dataclass(frozen=True)
class ModelName:
    """A requested model name split into its tier and its modes."""

    tier: str
    modes: frozenset[Mode]
    context_window: int | None = None


def parse_model_name(name: str) -> ModelName | None:
    """``tier:mode:...`` → ModelName; None when a suffix is not a known mode."""
    tier, *suffixes = name.split(":")
    modes: set[Mode] = set()
    context_window = None
    known = {mode.value: mode for mode in Mode}
    for suffix in suffixes:
        match = _CONTEXT_RE.match(suffix)
        if match:
            context_window = int(match.group(1))
        elif suffix in known:
            modes.add(known[suffix])
        else:
            return None
    return ModelName(tier, frozenset(modes), context_window)
