"""The prompted tool protocol: tools for endpoints whose model has no native tool calling.

Many local servers (a llama.cpp chat template without tools, an older vLLM model) refuse
the ``tools`` parameter, or accept it and ignore it. For a profile with
``tool_calling = prompted`` the gateway speaks this protocol instead, and the engine sees
exactly what it sees with native tools: ``ToolCallRequest``s with stable ids.

The request
    The tools are described in the system message, under the heading
    ``## Tools (reply protocol)``: one line per tool,
    ``- <name>: <description> Arguments: <JSON schema of the arguments>``.
    No ``tools`` parameter is sent.

The reply
    ONE JSON object, either a tool call::

        {"tool": "<name>", "arguments": {...}, "confidence": 0.9}

    or the decision (answer, or a question for a human)::

        {"answer": "...", "question": null, "confidence": 0.8}

    Prose or a ```json fence around the object is tolerated (``json_text``). When the
    profile's structured output is ``json_schema``, ``response_format`` carries a schema
    that allows both shapes (``either_schema``: all five keys, unused ones null).

The transcript
    A server without tools in its chat template refuses ``role: tool`` messages and
    assistant ``tool_calls``, so the conversation is rewritten on the way out: an
    assistant tool call becomes assistant content holding the call's JSON as above, and a
    tool result becomes a user message
    ``Result of <tool> (call <id>): {"ok": true, "result": ...}``.

The call id of a prompted call is derived from the conversation, the tool and its
arguments, so a replayed or cached reply names the same call.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from .llm import DECISION_SCHEMA, ToolCallRequest

HEADING = "## Tools (reply protocol)"
RESULT_PREFIX = "Result of "
CONFIDENCE = "confidence"

_PROTOCOL = (
    "This endpoint has no function calling: you use a tool by replying with JSON. To use "
    "a tool, reply with exactly one JSON object and nothing else:\n"
    '{"tool": "<tool name>", "arguments": {<the tool\'s arguments>}, "confidence": '
    "<0 to 1: how sure you are that this is the right next step>}\n"
    'The result comes back in a user message starting "Result of <tool name> (call <id>):", '
    'followed by {"ok": true, "result": ...} or {"ok": false, "error": "..."}.\n'
    "When you need no tool, reply with the decision object instead: "
    '{"answer": <string or null>, "question": <string or null>, "confidence": <0 to 1>}.\n'
    "Tools (name: description. Arguments: JSON schema):"
)


def instructions(tools: list[dict[str, Any]]) -> str:
    """The system-message section that offers ``tools`` (OpenAI function tool schemas)."""
    lines = [HEADING, _PROTOCOL]
    for tool in tools:
        function = tool.get("function") or {}
        description = " ".join(str(function.get("description") or "").split())
        schema = json.dumps(argument_schema(tool), separators=(", ", ": "))
        lines.append(f"- {function.get('name')}: {description} Arguments: {schema}")
    return "\n".join(lines)


def argument_schema(tool: dict[str, Any]) -> dict[str, Any]:
    """The tool's parameters without ``confidence``, which the protocol carries beside them."""
    params = copy.deepcopy((tool.get("function") or {}).get("parameters") or {})
    params.get("properties", {}).pop(CONFIDENCE, None)
    if CONFIDENCE in params.get("required", []):
        params["required"] = [name for name in params["required"] if name != CONFIDENCE]
    return params


def either_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """``response_format`` allowing a prompted tool call or a decision. Not ``strict``:
    OpenAI's strict mode forbids the tools' own optional fields, and the endpoints that
    need this protocol enforce a schema by grammar, which takes ``anyOf`` as it is."""
    decision = DECISION_SCHEMA["json_schema"]["schema"]["properties"]
    names = [(tool.get("function") or {}).get("name") for tool in tools]
    properties = {
        "tool": {"anyOf": [{"type": "string", "enum": names}, {"type": "null"}]},
        "arguments": {"anyOf": [*(argument_schema(tool) for tool in tools), {"type": "null"}]},
        **decision,
    }
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "tool_call_or_decision",
            "strict": False,
            "schema": {"type": "object", "properties": properties,
                       "required": list(properties)},
        },
    }


def transcript(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` without tool roles: calls as assistant JSON, results as user messages."""
    names: dict[str, str] = {}
    converted: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                names[str(call.get("id"))] = str(function.get("name"))
                converted.append({"role": "assistant",
                                  "content": call_json(function.get("name"),
                                                       function.get("arguments"))})
        elif role == "tool":
            call_id = str(message.get("tool_call_id"))
            name = names.get(call_id, "a tool")
            converted.append({"role": "user", "content":
                              f"{RESULT_PREFIX}{name} (call {call_id}): {message.get('content')}"})
        else:
            converted.append(message)
    return converted


def call_json(name: Any, arguments: Any) -> str:
    """A native tool call (arguments a JSON string with ``confidence`` inside) as the
    protocol's JSON object."""
    try:
        args = json.loads(arguments) if isinstance(arguments, str) else arguments
    except json.JSONDecodeError:
        args = arguments
    confidence = args.pop(CONFIDENCE, None) if isinstance(args, dict) else None
    return json.dumps({"tool": name, "arguments": args, CONFIDENCE: confidence})


def read_call(reply: dict[str, Any], messages: list[dict[str, Any]]) -> ToolCallRequest | None:
    """The tool call a protocol reply makes, None when it is a decision. Arguments that are
    not an object are passed on as they are, for the engine to refuse and repair."""
    name = reply.get("tool")
    if not isinstance(name, str) or not name.strip():
        return None
    args = reply.get("arguments")
    if args is None:
        args = {}
    if isinstance(args, dict):
        confidence = reply.get(CONFIDENCE)
        if CONFIDENCE not in args and isinstance(confidence, int | float):
            args = {**args, CONFIDENCE: confidence}
        arguments = json.dumps(args)
    else:
        arguments = args if isinstance(args, str) else json.dumps(args)
    return ToolCallRequest(id=call_id(messages, name, arguments), name=name.strip(),
                           arguments=arguments)


def call_id(messages: list[dict[str, Any]], name: str, arguments: str) -> str:
    """Stable: the same conversation asking for the same call gets the same id."""
    material = json.dumps([messages, name, arguments], sort_keys=True, default=str)
    return "call_" + hashlib.sha256(material.encode()).hexdigest()[:24]
