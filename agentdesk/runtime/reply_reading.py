"""Reading an endpoint's answer into a ``ModelReply``, whatever came back.

The body is read as plain JSON, not through the client's typed ``ChatCompletion``: a
proxy's HTML page, a body cut off mid-way, a 200 carrying an ``error`` object or a reply
without ``choices`` would otherwise surface as an ``AttributeError`` deep in the engine.
Here each becomes a ``ModelError`` that says what the endpoint did. Where the *model's
content* is the problem (no JSON, wrong shape) the reply is passed on as it is, and the
engine's reading of it raises ``InvalidOutput``, which its one repair covers.

A reply without ``usage`` is flagged ``usage_reported=False`` with zero tokens; the
caller bills such a call at the worst case it reserved for it.

Token log-probabilities (``choices[0].logprobs.content``) are kept as the endpoint sent
them, for the content as generated: the JSON read out of prose, or a prompted tool call
read out of the content, still lies somewhere in those tokens (``token_probability``
finds where). Entries that are not ``{token, logprob}`` make the whole list None: a
signal computed from part of the tokens would overstate the probability.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from . import prompted_tools
from .json_text import find_json_object
from .llm import ModelError, ModelReply, TokenLogprob, ToolCallRequest
from .profiles import ModelProfile, ToolCalling

SNIPPET = 120
"""Characters of an unreadable body quoted in the error."""


def read_reply(
    profile: ModelProfile,
    response: httpx.Response,
    *,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    latency_ms: int,
) -> ModelReply:
    """The reply in ``response`` (a 2xx answer to a chat completion request)."""
    data = _json_body(profile.name, response)
    message = _first_message(profile.name, data)
    logprobs = _logprobs(data["choices"][0].get("logprobs"))
    content = _text(message.get("content"))
    calls = _native_calls(message.get("tool_calls"), messages)
    found = find_json_object(content) if not calls else None
    if found is not None:
        prompted = profile.tool_calling == ToolCalling.PROMPTED and bool(tools)
        call = prompted_tools.read_call(found, messages) if prompted else None
        if call is not None:
            calls, content = [call], None
        else:
            content = json.dumps(found)  # the object without the prose or fence around it
    usage = data.get("usage")
    counts = _usage(usage) if isinstance(usage, dict) else None
    tokens_in, cached, tokens_out, reasoning = counts or (0, 0, 0, 0)
    return ModelReply(
        # the catalogue's name, not the reply's: endpoints answer with a snapshot name
        # ("gpt-4o-2024-08-06") or a file name (llama.cpp), and the call is priced by name
        model=profile.name,
        content=content,
        tool_calls=calls,
        tokens_in=tokens_in,
        tokens_cached=cached,
        tokens_out=tokens_out,
        tokens_reasoning=reasoning,
        latency_ms=latency_ms,
        usage_reported=counts is not None,
        logprobs=logprobs,
    )


def _json_body(name: str, response: httpx.Response) -> dict[str, Any]:
    raw = response.text
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, ValueError):
        data = None
    if data is None:
        snippet = " ".join(raw[:SNIPPET].split())
        if "json" not in content_type:
            raise ModelError(
                f"{name}: the endpoint answered {content_type or 'no content type'}, not "
                f"JSON ({snippet!r}…). Is the base URL the API's (usually ending in /v1)?")
        raise ModelError(f"{name}: the endpoint's reply is not valid JSON (truncated?): "
                         f"{snippet!r}…")
    if not isinstance(data, dict):
        raise ModelError(f"{name}: the endpoint's reply is not a JSON object")
    error = data.get("error")
    if error and not data.get("choices"):
        detail = error.get("message") if isinstance(error, dict) else error
        raise ModelError(f"{name}: the endpoint answered HTTP {response.status_code} with an "
                         f"error: {str(detail)[:300]}")
    return data


def _first_message(name: str, data: dict[str, Any]) -> dict[str, Any]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ModelError(f"{name}: the reply has no choices (the endpoint generated nothing)")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise ModelError(f"{name}: the reply's first choice has no message")
    return message


def _logprobs(raw: Any) -> list[TokenLogprob] | None:
    """The content's token log-probabilities; None when absent or not all readable."""
    entries = raw.get("content") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        return None
    tokens = []
    for entry in entries:
        token = entry.get("token") if isinstance(entry, dict) else None
        logprob = entry.get("logprob") if isinstance(entry, dict) else None
        if not isinstance(token, str) or not isinstance(logprob, int | float) or isinstance(
                logprob, bool):
            return None
        raw_bytes = entry.get("bytes")
        readable = isinstance(raw_bytes, list) and all(
            isinstance(b, int) and 0 <= b < 256 for b in raw_bytes)
        tokens.append(TokenLogprob(token=token, logprob=float(logprob),
                                   bytes=list(raw_bytes) if readable else None))
    return tokens


def _text(content: Any) -> str | None:
    """Message content as text: a string, or the text parts of a list of parts."""
    if isinstance(content, str) or content is None:
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content
                       if isinstance(part, dict) and isinstance(part.get("text"), str))
    return str(content)


def _native_calls(raw: Any, messages: list[dict[str, Any]]) -> list[ToolCallRequest]:
    """Function calls of the reply. Arguments sent as an object (some servers do) are
    encoded; a call without an id gets the protocol's stable one."""
    calls = []
    for call in raw if isinstance(raw, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or call.get("type", "function") != "function":
            continue
        name = str(function.get("name") or "")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments if arguments is not None else {})
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = prompted_tools.call_id(messages, name, arguments)
        calls.append(ToolCallRequest(id=call_id, name=name, arguments=arguments))
    return calls


def _usage(usage: dict[str, Any]) -> tuple[int, int, int, int] | None:
    """(prompt, cached, completion, reasoning) tokens; None when the counts are missing."""
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not _count(prompt) or not _count(completion):
        return None
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else 0
    reasoning = (completion_details.get("reasoning_tokens")
                 if isinstance(completion_details, dict) else 0)
    return (prompt, cached if _count(cached) else 0, completion,
            reasoning if _count(reasoning) else 0)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
