"""The app's prompted tool protocol, read from the model's side.

An endpoint without native tool calling gets its tools described in the system message
(under ``## Tools (reply protocol)``, one ``- <name>: ...`` line each) and is asked to
reply with one JSON object: ``{"tool": ..., "arguments": ..., "confidence": ...}`` or the
decision. Its earlier calls come back as assistant content holding that JSON, and their
results as user messages ``Result of <tool> (call <id>): <json>``. A real model follows
those instructions; the simulator follows them here, reading only what the request says.
"""

from __future__ import annotations

import json
import re
from typing import Any

TOOLS_HEADING = "## Tools (reply protocol)"
_TOOL_LINE_RE = re.compile(r"^- (?P<name>[A-Za-z0-9_.-]+): ", re.MULTILINE)
_TOOL_DESCRIPTION_RE = re.compile(
    r"^- (?P<name>[A-Za-z0-9_.-]+): (?P<description>.*?)(?: Arguments: (?P<schema>\{.*\}))?$",
    re.MULTILINE)
_RESULT_RE = re.compile(r"^Result of (?P<name>\S+) \(call (?P<id>[^)]*)\): (?P<payload>.*)\Z",
                        re.DOTALL)
_JSON_REPLY_RE = re.compile(r"reply with (?:exactly )?one JSON object", re.IGNORECASE)


def offered_tools(system_text: str) -> frozenset[str]:
    """Names of the tools the instructions offer (none without the protocol's section)."""
    start = system_text.find(TOOLS_HEADING)
    if start < 0:
        return frozenset()
    section = system_text[start + len(TOOLS_HEADING):]
    end = section.find("\n## ")
    section = section if end < 0 else section[:end]
    return frozenset(match.group("name") for match in _TOOL_LINE_RE.finditer(section))


def described_tools(system_text: str) -> list[dict[str, Any]]:
    """The tools the instructions offer, as OpenAI function tools: each line's name, its
    description and the JSON schema after ``Arguments:`` (empty when unreadable)."""
    start = system_text.find(TOOLS_HEADING)
    if start < 0:
        return []
    section = system_text[start + len(TOOLS_HEADING):]
    end = section.find("\n## ")
    section = section if end < 0 else section[:end]
    tools = []
    for match in _TOOL_DESCRIPTION_RE.finditer(section):
        try:
            schema = json.loads(match["schema"] or "{}")
        except json.JSONDecodeError:
            schema = {}
        tools.append({"type": "function", "function": {
            "name": match["name"], "description": match["description"].strip(),
            "parameters": schema if isinstance(schema, dict) else {}}})
    return tools


def asks_for_json(system_text: str) -> bool:
    """True when the instructions ask for the reply as one JSON object."""
    return _JSON_REPLY_RE.search(system_text) is not None


def prompted_call(content: str) -> tuple[str, dict[str, Any]] | None:
    """``(tool, arguments with confidence)`` of an assistant turn holding a protocol call."""
    try:
        value = json.loads(content)
    except (json.JSONDecodeError, ValueError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("tool"), str):
        return None
    arguments = value.get("arguments") if isinstance(value.get("arguments"), dict) else {}
    if isinstance(value.get("confidence"), int | float):
        arguments = {**arguments, "confidence": value["confidence"]}
    return value["tool"], arguments


def prompted_result(text: str) -> tuple[str, str, str] | None:
    """``(tool, call id, result JSON)`` of a user turn reporting a tool's result."""
    match = _RESULT_RE.match(text)
    return (match["name"], match["id"], match["payload"]) if match else None


def call_content(name: str, arguments: dict[str, Any], *, fenced: bool) -> str:
    """A tool call as the protocol asks for it; ``fenced`` wraps it the way chatty models
    do when nothing forces bare JSON."""
    args = {key: value for key, value in arguments.items() if key != "confidence"}
    text = json.dumps({"tool": name, "arguments": args,
                       "confidence": arguments.get("confidence")})
    return f"```json\n{text}\n```" if fenced else text
