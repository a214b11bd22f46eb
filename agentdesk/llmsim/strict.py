"""What each serving mode refuses, answered with the real endpoint's exact 400.

The point of a strict mode is to catch a request the real endpoint would refuse before it
meets the real endpoint: the wording, ``type``, ``param`` and ``code`` below are copied
from the errors OpenAI and llama.cpp send, so the gateway's reading of them is tested
against the real shapes.
"""

from __future__ import annotations

import json
from typing import Any

from .models import SimModel
from .modes import Mode
from .request import ChatRequest
from .responses import JsonResponse, openai_error

REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high")


def refusal(request: ChatRequest, model: SimModel) -> JsonResponse | None:
    """The 400 this model's endpoint answers ``request`` with, or None when it accepts it."""
    body = request.body
    if Mode.REASONING in model.modes:
        refused = _reasoning_refusal(body)
        if refused is not None:
            return refused
    elif _given(body, "reasoning_effort"):  # as OpenAI's non-reasoning models answer it
        return _unsupported_parameter("reasoning_effort")
    json_schema = (request.response_format or {}).get("type") == "json_schema"
    if Mode.JSON_OBJECT in model.modes and json_schema:
        return llama_error('response_format type must be one of "text" or "json_object"')
    if Mode.NO_TOOLS in model.modes:
        return _tools_refusal(request)
    return None


def _reasoning_refusal(body: dict[str, Any]) -> JsonResponse | None:
    """OpenAI's reasoning models (o-series, GPT-5): no max_tokens, temperature 1 only, no
    logprobs; ``reasoning_effort`` must be one of the documented values."""
    if _given(body, "max_tokens"):
        return _unsupported_parameter(
            "max_tokens", "Use 'max_completion_tokens' instead.")
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        return openai_error(
            400,
            f"Unsupported value: 'temperature' does not support {json.dumps(temperature)} "
            "with this model. Only the default (1) value is supported.",
            code="unsupported_value", param="temperature",
        )
    for name in ("logprobs", "top_logprobs"):
        if _given(body, name):
            return _unsupported_parameter(name)
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        allowed = ", ".join(f"'{value}'" for value in REASONING_EFFORTS)
        return openai_error(
            400, f"Invalid value: {json.dumps(effort)}. Supported values are: {allowed}.",
            code="invalid_value", param="reasoning_effort",
        )
    return None


def _tools_refusal(request: ChatRequest) -> JsonResponse | None:
    """A llama.cpp server whose chat template has no tools (started without ``--jinja``)."""
    if request.tools or _given(request.body, "tool_choice"):
        return llama_error("tools param requires --jinja flag")
    for message in request.messages:
        if message.get("role") == "tool" or message.get("tool_calls"):
            return llama_error(
                "this model's chat template does not support tool calls or tool messages")
    return None


def _given(body: dict[str, Any], name: str) -> bool:
    return body.get(name) is not None and body.get(name) is not False


def _unsupported_parameter(name: str, hint: str = "") -> JsonResponse:
    message = f"Unsupported parameter: '{name}' is not supported with this model."
    return openai_error(400, f"{message} {hint}".strip(), code="unsupported_parameter",
                        param=name)


def llama_error(message: str, status: int = 400, type_: str = "invalid_request_error",
                **extra: Any) -> JsonResponse:
    """llama.cpp's error body: ``{"error": {"code": 400, "message": ..., "type": ...}}``."""
    return JsonResponse(status, {"error": {"code": status, "message": message,
                                           "type": type_, **extra}})
