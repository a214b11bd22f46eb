"""Parsing and validating a ``POST /v1/chat/completions`` body.

Validation is deliberately strict about shape (so the app's bugs surface as the same
400s OpenAI would return) and lenient about sampling knobs: only ``temperature`` and
``seed`` matter, to tell samples apart (see ``error_model``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


class RequestError(ValueError):
    """The request body is not a valid chat completion request (answered with HTTP 400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ChatRequest:
    """The parts of a chat completion request the simulator acts on."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any] | None
    response_format: dict[str, Any] | None
    max_tokens: int | None
    """``max_completion_tokens`` or else ``max_tokens``: the cap on generated tokens."""
    body: dict[str, Any] = field(default_factory=dict, repr=False)
    """The whole request body, for the checks a serving mode makes (see ``strict``)."""

    @property
    def logprobs(self) -> bool:
        return self.body.get("logprobs") is True

    @property
    def temperature(self) -> float | None:
        value = self.body.get("temperature")
        return float(value) if isinstance(value, int | float) and not isinstance(
            value, bool) else None

    @property
    def seed(self) -> int | None:
        value = self.body.get("seed")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def reasoning_effort(self) -> str | None:
        value = self.body.get("reasoning_effort")
        return value if isinstance(value, str) else None

    @property
    def wants_json(self) -> bool:
        """True when the caller asked for JSON content (json_schema or json_object)."""
        kind = (self.response_format or {}).get("type")
        return kind in {"json_schema", "json_object"}

    @property
    def tool_names(self) -> frozenset[str]:
        """Function tools the model may call, honouring ``tool_choice: "none"``."""
        if self.tool_choice == "none":
            return frozenset()
        return frozenset(tool["function"]["name"] for tool in self.tools)


def parse_chat_request(raw: bytes) -> ChatRequest:
    """Decode and check a request body; raises RequestError with OpenAI's wording style."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"We could not parse the JSON body of your request: {exc}") from exc
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")

    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("You must provide a model parameter.", "model")
    if body.get("stream"):
        raise RequestError("llmsim does not support stream=true.", "stream")
    if body.get("n", 1) != 1:
        raise RequestError("llmsim only supports n=1.", "n")

    return ChatRequest(
        model=model,
        messages=_messages(body.get("messages")),
        tools=_tools(body.get("tools")),
        tool_choice=_tool_choice(body.get("tool_choice")),
        response_format=_response_format(body.get("response_format")),
        max_tokens=_max_tokens(body),
        body=body,
    )


def _messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise RequestError("'messages' must be a non-empty array.", "messages")
    for i, message in enumerate(value):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise RequestError(f"{param} must be an object.", param)
        role = message.get("role")
        if role not in ROLES:
            raise RequestError(f"{param}.role must be one of {sorted(ROLES)}.", f"{param}.role")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise RequestError(f"{param}.content must be a string or an array.", param)
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise RequestError(f"{param}.tool_call_id is required for tool messages.", param)
        for j, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
                raise RequestError(
                    f"{param}.tool_calls[{j}] must have function.name and function.arguments.",
                    f"{param}.tool_calls[{j}]",
                )
    return value


def _tools(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestError("'tools' must be an array.", "tools")
    for i, tool in enumerate(value):
        function = tool.get("function") if isinstance(tool, dict) else None
        if (
            not isinstance(tool, dict)
            or tool.get("type") != "function"
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
        ):
            raise RequestError(
                f"tools[{i}] must be {{'type': 'function', 'function': {{'name': ...}}}}.",
                f"tools[{i}]",
            )
    return value


def _tool_choice(value: Any) -> str | dict[str, Any] | None:
    if value is None or value in ("none", "auto", "required") or isinstance(value, dict):
        return value
    raise RequestError("'tool_choice' must be 'none', 'auto', 'required' or an object.")


def _response_format(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in {
        "text",
        "json_object",
        "json_schema",
    }:
        raise RequestError(
            "'response_format.type' must be 'text', 'json_object' or 'json_schema'.",
            "response_format",
        )
    if value["type"] == "json_schema" and not isinstance(value.get("json_schema"), dict):
        raise RequestError("'response_format.json_schema' is required.", "response_format")
    return value


def _max_tokens(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise RequestError(f"'{name}' must be a positive integer.", name)
        return value
    return None
