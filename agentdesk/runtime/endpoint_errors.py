"""Turning an endpoint's refusal into a ``ModelError`` that says what to change.

A 400 from a real endpoint usually means the catalogue describes the model wrongly (a
llama.cpp server given ``json_schema``, a reasoning model given ``max_tokens``). The run
fails ``model_failed`` either way; what matters is that the message on its step names the
refused parameter and the profile field that fixes it, so whoever reads the trace knows
what to do without reading code. The profile fields are named as admin labels them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import openai

from .llm import ModelError
from .profiles import ModelProfile, StructuredOutput

MAX_DETAIL = 300
"""Characters of the endpoint's own message kept in ours."""

PARAMETERS = ("response_format", "json_schema", "json_object", "tools", "tool_choice",
              "max_completion_tokens", "max_tokens", "temperature", "reasoning_effort",
              "top_logprobs", "logprobs")
"""Request parameters an endpoint may refuse, longest names first where one contains
another, as they are searched for in an error's text."""

_CONTEXT_PATTERNS = (
    "context_length_exceeded", "maximum context length", "exceeds the available context size",
    "exceed_context_size", "context window", "too many tokens",
)


@dataclass(frozen=True)
class Refusal:
    """What the endpoint refused: the parameter (as we sent it) and the fix in admin."""

    parameter: str
    fix: str


def status_error(profile: ModelProfile, body: dict[str, Any],
                 exc: openai.APIStatusError) -> ModelError:
    """The ModelError for an HTTP error answer to ``body``."""
    name, detail = profile.name, error_detail(exc)
    where = f"in admin → Models → {name}, or run manage.py probe_model {name}"
    if exc.status_code in {400, 413, 422} and is_context_overflow(exc):
        return ModelError(
            f"{name}: the conversation does not fit the model's context window "
            f"(HTTP {exc.status_code}: {detail}). The catalogue says Context window = "
            f"{profile.context_window} tokens; set it to what the server is configured "
            f"with {where}, or give the server a larger context.")
    # llama.cpp answers some refusals (e.g. "tools param requires --jinja flag") with a 500
    refused = refusal(exc, body) if exc.status_code in {400, 422, 500} else None
    if refused is not None:
        return ModelError(
            f"{name} refused {refused.parameter} (HTTP {exc.status_code}: {detail}). "
            f"{refused.fix} {where}.")
    if exc.status_code == 404:
        return ModelError(f"{name}: HTTP 404: {detail}. Is the model name right, and does "
                          "the endpoint serve it?")
    return ModelError(f"{name}: HTTP {exc.status_code}: {detail}")


def refusal(exc: openai.APIStatusError, body: dict[str, Any]) -> Refusal | None:
    """The parameter of ``body`` the error names (its ``param``, else the first one its
    message mentions), with the profile change that stops sending it. Only parameters we
    actually sent count: an error text may mention others ("use X instead")."""
    sent = {name for name in PARAMETERS if name in body}
    response_format = body.get("response_format") or {}
    if response_format:
        sent.add(str(response_format.get("type")))
    error = exc.body if isinstance(exc.body, dict) else {}
    param = error.get("param")
    if isinstance(param, str) and param.split(".")[0].split("[")[0] in sent:
        return _fix(param.split(".")[0].split("[")[0], body)
    text = error_detail(exc)
    found = [(match.start(), name) for name in sorted(sent, key=len, reverse=True)
             for match in [re.search(rf"\b{re.escape(name)}\b", text)] if match]
    if not found:
        return None
    return _fix(min(found)[1], body)


def _fix(parameter: str, body: dict[str, Any]) -> Refusal:
    structured = (body.get("response_format") or {}).get("type")
    if parameter in {"response_format", "json_schema", "json_object"}:
        if structured == StructuredOutput.JSON_OBJECT:
            return Refusal("response_format json_object",
                           "Set Structured output to prompt")
        return Refusal(f"response_format {structured}",
                       "Set Structured output to json_object or prompt")
    if parameter in {"tools", "tool_choice"}:
        return Refusal(parameter, "Set Tool calling to prompted")
    if parameter in {"max_tokens", "temperature"}:
        return Refusal(parameter, "It is a reasoning model: tick Reasoning")
    if parameter == "max_completion_tokens":
        return Refusal(parameter, "It is not a reasoning model: untick Reasoning")
    if parameter == "reasoning_effort":
        return Refusal(parameter, "Set Reasoning effort to — (none), or untick Reasoning")
    return Refusal(parameter, "Untick Logprobs")


def is_context_overflow(exc: openai.APIStatusError) -> bool:
    error = exc.body if isinstance(exc.body, dict) else {}
    text = " ".join(str(part) for part in (error.get("code"), error.get("type"),
                                           error_detail(exc))).lower()
    return any(pattern in text for pattern in _CONTEXT_PATTERNS)


def error_detail(exc: openai.APIStatusError) -> str:
    """The endpoint's own message: ``error.message`` of an OpenAI-shaped body, else the
    body's text (an HTML error page, a proxy's plain text), shortened."""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        text = body["message"]
    elif isinstance(body, str) and body.strip():
        text = body
    else:
        text = exc.message
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"
