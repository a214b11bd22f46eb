"""Finding the JSON object in a model's text reply.

An endpoint without ``response_format`` (or a small model that half follows it) wraps
its JSON in prose, in a ```json fence, or after a ``<think>`` block. Refusing such a reply
would cost a repair round trip for nothing, so the gateway reads the object out of it;
only a reply with no JSON object at all goes to the engine's one repair.
"""

from __future__ import annotations

import json
import re
from typing import Any

_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE_RE = re.compile(r"```[A-Za-z]*[ \t]*\n?(.*?)```", re.DOTALL)
MAX_ATTEMPTS = 50
"""Braces tried before giving up, so a long brace-heavy reply costs bounded time."""


def find_json_object(text: str | None) -> dict[str, Any] | None:
    """The first JSON object in ``text``: the whole text, else a fenced block, else the
    first ``{`` that starts a complete object. None when there is none."""
    if not text:
        return None
    text = _THINK_RE.sub("", text).strip()
    for candidate in (text, *(m.group(1).strip() for m in _FENCE_RE.finditer(text))):
        found = _loads_object(candidate)
        if found is not None:
            return found
    decoder = json.JSONDecoder()
    start = text.find("{")
    for _ in range(MAX_ATTEMPTS):
        if start < 0:
            return None
        try:
            value, _end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def _loads_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None
