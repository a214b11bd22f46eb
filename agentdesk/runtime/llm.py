"""What the engine knows of a model: the ``ModelClient`` protocol, its replies and errors.

The runtime depends on the small ``ModelClient`` protocol, so unit tests script replies
while production talks to any OpenAI-compatible endpoint (or the bundled simulator) over
HTTP through ``gateway.OpenAIGateway``, which shapes each request from the model's profile
(``request_shaping``) and reads whatever comes back (``reply_reading``). An endpoint that
cannot answer surfaces as ``ModelError`` with a clear message; a model whose answer has the
wrong shape surfaces as ``InvalidOutput`` when the engine reads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, Field, ValidationError

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
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
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
class TokenLogprob:
    """One generated token of the reply's content and its log-probability, as the
    endpoint's ``logprobs.content`` gives it (``bytes``: the token's UTF-8 bytes, which a
    token holding part of a character needs; None when the endpoint sent none)."""

    token: str
    logprob: float
    bytes: list[int] | None = None


@dataclass(frozen=True)
class Sampling:
    """How a call samples. The default is the deterministic decision call (temperature 0,
    cacheable); the agreement signal's samples set a temperature, and the logprobs signal
    asks for token log-probabilities (sent only when the model's profile says the endpoint
    returns them)."""

    temperature: float | None = None  # None: 0 (a reasoning model: its own, unsent)
    logprobs: bool = False


DETERMINISTIC = Sampling()


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
    # the content's tokens as generated (before any reading of the JSON out of prose), or
    # None when none were asked for or returned; see ``token_probability``
    logprobs: list[TokenLogprob] | None = None


class ModelClient(Protocol):
    def complete(
        self,
        *,
        profile: ModelProfile,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        max_tokens: int,
        sampling: Sampling = DETERMINISTIC,
    ) -> ModelReply:
        """One chat completion from ``profile.name``, shaped by what the profile says the
        endpoint accepts."""


class FinalDecision(BaseModel):
    answer: str | None
    question: str | None
    confidence: float = Field(ge=0, le=1)  # 1077 is not a confidence: the reply is repaired


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

