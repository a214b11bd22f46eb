"""The model gateway: one place where the ``openai`` client is called.

The runtime depends on the small ``ModelClient`` protocol, so unit tests script replies
while production talks to any OpenAI-compatible endpoint (or the bundled simulator) over
HTTP. The client's own retry loop handles 429 (honouring Retry-After), 5xx and timeouts;
what is still failing after that surfaces as ``ModelError`` with a clear message.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ValidationError

from .profiles import ModelProfile

DECISION_SCHEMA: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "decision",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "answer": {"type": ["string", "null"]},
                "question": {"type": ["string", "null"]},
                "confidence": {"type": "number"},
            },
            "required": ["answer", "question", "confidence"],
            "additionalProperties": False,
        },
    },
}


class ModelError(Exception):
    """The model endpoint could not give an answer (after the client's retries)."""


class InvalidOutput(Exception):
    """The model answered, but not in the shape we asked for."""


@dataclass(frozen=True)
class ToolCallRequest:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ModelReply:
    model: str
    content: str | None
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    tokens_in: int = 0
    tokens_cached: int = 0
    tokens_out: int = 0
    tokens_reasoning: int = 0
    latency_ms: int = 0
    usage_reported: bool = True  # False: the reply had no ``usage`` (the tokens are unknown)


class ModelClient(Protocol):
    def complete(
        self,
        *,
        profile: ModelProfile,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        max_tokens: int,
    ) -> ModelReply:
        """One chat completion from ``profile.name``, shaped by what the profile says the
        endpoint accepts."""


class FinalDecision(BaseModel):
    answer: str | None
    question: str | None
    confidence: float


def parse_decision(content: str | None) -> FinalDecision:
    try:
        return FinalDecision.model_validate_json(content or "")
    except ValidationError as exc:
        raise InvalidOutput(
            f"reply is not a valid decision: {exc.errors(include_url=False)}"
        ) from None


def parse_tool_arguments(call: ToolCallRequest) -> dict[str, Any]:
    try:
        args = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"arguments of {call.name} are not JSON: {exc}") from exc
    if not isinstance(args, dict):
        raise InvalidOutput(f"arguments of {call.name} are not a JSON object")
    return args


class OpenAIGateway:
    """``ModelClient`` over the official ``openai`` client."""

    def __init__(
        self, *, base_url: str | None, api_key: str, timeout: float = 30.0, max_retries: int = 3
    ) -> None:
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries
        )

    def complete(
        self,
        *,
        profile: ModelProfile,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        max_tokens: int,
    ) -> ModelReply:
        model = profile.name
        started = time.perf_counter()
        body: dict[str, Any] = {
            "model": model, "messages": messages, "response_format": DECISION_SCHEMA,
            "max_tokens": max_tokens, "temperature": 0,
        }
        if tools:
            body["tools"] = tools
        try:
            # ``post`` is the client's documented way to send a body as it is: the body is
            # plain JSON already, and ``chat.completions.create`` would walk it against the
            # params' TypedDicts first (~1 ms of CPU per call). Retries, timeouts, auth and
            # errors are the client's, as with ``create``.
            resp = self._client.post("/chat/completions", body=body, cast_to=ChatCompletion)
        except openai.APIStatusError as exc:
            raise ModelError(f"{model}: HTTP {exc.status_code}: {exc.message}") from exc
        except openai.APITimeoutError as exc:
            raise ModelError(f"{model}: timed out") from exc
        except openai.APIConnectionError as exc:
            raise ModelError(f"{model}: connection failed: {exc}") from exc
        latency_ms = int((time.perf_counter() - started) * 1000)
        message = resp.choices[0].message
        usage = resp.usage
        cached = reasoning = 0
        if usage and usage.prompt_tokens_details:
            cached = usage.prompt_tokens_details.cached_tokens or 0
        if usage and usage.completion_tokens_details:
            reasoning = usage.completion_tokens_details.reasoning_tokens or 0
        return ModelReply(
            model=resp.model or model,
            content=message.content,
            tool_calls=[
                ToolCallRequest(id=c.id, name=c.function.name, arguments=c.function.arguments)
                for c in (message.tool_calls or [])
                if c.type == "function"
            ],
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_cached=cached,
            tokens_out=usage.completion_tokens if usage else 0,
            tokens_reasoning=reasoning,
            latency_ms=latency_ms,
        )


def estimate_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
    """A cheap upper-ish estimate (4 chars a token) used to check budgets *before* a call."""
    size = len(json.dumps(messages, default=str)) + len(json.dumps(tools))
    return size // 4 + 16
