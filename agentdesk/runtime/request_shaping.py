"""Building a chat completion request from a model's profile.

Endpoints disagree on what they accept, and refuse what they do not (HTTP 400), so the
body is shaped by what the catalogue says this model's endpoint takes:

- a reasoning model gets ``max_completion_tokens`` (never ``max_tokens``), no
  ``temperature``, and ``reasoning_effort`` when the profile sets one; any other model
  gets ``max_tokens`` and ``temperature: 0`` (determinism where possible), or the
  sampling temperature of the agreement signal's samples (a reasoning model samples at
  its own fixed temperature, so none is sent);
- ``logprobs: true`` when the call asks for them (the logprobs confidence signal) and the
  profile says the endpoint returns them (never for a reasoning model: OpenAI refuses it);
- structured output, best first: ``json_schema`` sends the strict decision schema;
  ``json_object`` sends ``{"type": "json_object"}`` with the schema spelled out in the
  system message; ``prompt`` sends no ``response_format``, only the instructions (the
  reply is then read tolerantly, and the engine's one repair covers a bad one);
- tools: ``native`` sends the ``tools`` parameter; ``prompted`` describes them in the
  system message and rewrites the transcript (see ``prompted_tools``).

Instructions are appended to the leading system message rather than sent as a second
one, because several chat templates refuse a system message anywhere but first.
"""

from __future__ import annotations

import json
from typing import Any

from . import prompted_tools
from .llm import DECISION_SCHEMA, DETERMINISTIC, Sampling
from .profiles import ModelProfile, StructuredOutput, ToolCalling

JSON_OBJECT_FORMAT: dict[str, Any] = {"type": "json_object"}


def shape_request(
    profile: ModelProfile,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    max_tokens: int,
    sampling: Sampling = DETERMINISTIC,
) -> dict[str, Any]:
    """The JSON body of ``POST /chat/completions`` for ``profile``."""
    body: dict[str, Any] = {"model": profile.name}
    prompted = profile.tool_calling == ToolCalling.PROMPTED
    offered = tools if prompted else []
    sections: list[str] = []
    if offered:
        sections.append(prompted_tools.instructions(offered))
    if profile.structured_output != StructuredOutput.JSON_SCHEMA:
        sections.append(decision_instructions(with_tools=bool(offered)))
    if prompted:
        messages = prompted_tools.transcript(messages)
    body["messages"] = with_instructions(messages, "\n\n".join(sections))

    if profile.structured_output == StructuredOutput.JSON_SCHEMA:
        body["response_format"] = (
            prompted_tools.either_schema(offered) if offered else DECISION_SCHEMA)
    elif profile.structured_output == StructuredOutput.JSON_OBJECT:
        body["response_format"] = JSON_OBJECT_FORMAT
    if tools and not prompted:
        body["tools"] = tools

    limit = min(max_tokens, profile.max_output_tokens)
    if profile.reasoning:
        body["max_completion_tokens"] = limit
        if profile.reasoning_effort:
            body["reasoning_effort"] = str(profile.reasoning_effort)
    else:
        body["max_tokens"] = limit
        body["temperature"] = sampling.temperature if sampling.temperature is not None else 0
        if sampling.logprobs and profile.logprobs:
            body["logprobs"] = True
    return body


def decision_instructions(*, with_tools: bool) -> str:
    """The decision schema in words, for endpoints that cannot be sent it as a schema."""
    schema = DECISION_SCHEMA["json_schema"]["schema"]
    lead = "When you do not use a tool, reply" if with_tools else "Reply"
    return (
        "## Reply format\n"
        f"{lead} with one JSON object and nothing else, matching this JSON schema:\n"
        f"{json.dumps(schema)}\n"
        '"answer" is your final answer (null when you ask a question instead), "question" '
        'a question for a human operator (null when you answer), "confidence" how sure you '
        "are, from 0 to 1."
    )


def with_instructions(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """``messages`` with ``text`` appended to the leading system message (or a new one)."""
    if not text:
        return messages
    first = messages[0] if messages else None
    if first and first.get("role") in {"system", "developer"} and isinstance(
            first.get("content"), str):
        return [{**first, "content": f"{first['content']}\n\n{text}"}, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]
