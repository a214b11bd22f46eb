"""The model gateway: the one place where the ``openai`` client is called.

Each request is shaped from the model's profile (``request_shaping``), sent as it is
with the client's documented ``post`` (retries, timeouts, auth and error classes are the
client's), and read from the raw HTTP answer (``reply_reading``), because an endpoint
that answers HTML, half a body or no choices must give a clear ``ModelError``, not a
crash. The client's own retry loop handles 429 (honouring Retry-After), 5xx and timeouts;
a refusal (400) names the parameter and the profile field to change (``endpoint_errors``).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai

from .endpoint_errors import status_error
from .llm import DETERMINISTIC, ModelError, ModelReply, Sampling
from .profiles import ModelProfile
from .reply_reading import read_reply
from .request_shaping import shape_request


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
        sampling: Sampling = DETERMINISTIC,
    ) -> ModelReply:
        body = shape_request(profile, messages, tools, max_tokens, sampling)
        started = time.perf_counter()
        response = self.send(profile, body)
        return read_reply(profile, response, messages=messages, tools=tools,
                          latency_ms=int((time.perf_counter() - started) * 1000))

    def send(self, profile: ModelProfile, body: dict[str, Any]) -> httpx.Response:
        """POST ``body`` as it is and return the raw 2xx answer; anything else is a
        ``ModelError``. (``chat.completions.create`` would walk the body against the
        params' TypedDicts first, ~1 ms of CPU per call, and parse the answer into types
        that a broken answer breaks.)"""
        model = profile.name
        try:
            return self._client.post("/chat/completions", body=body, cast_to=httpx.Response)
        except openai.APIStatusError as exc:
            raise status_error(profile, body, exc) from exc
        except openai.APITimeoutError as exc:
            raise ModelError(f"{model}: timed out") from exc
        except openai.APIConnectionError as exc:
            raise ModelError(f"{model}: connection failed: {exc}") from exc
