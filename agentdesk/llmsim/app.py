"""The ASGI application: routing, request bodies, simulated latency and faults.

Plain ASGI on purpose (no framework dependency). Every wait is an ``asyncio.sleep`` that
also ends when the client hangs up or the server stops, so hundreds of slow calls cost
no threads, and neither a client that timed out nor a shutdown waits out a stalled call.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .completions import complete, content_key
from .error_model import ErrorModel, SampleCounter
from .faults import (
    FAULT_HEADER,
    FaultKind,
    FaultLedger,
    FaultSpecError,
    conversation_key,
    distort,
    error_response,
    requested_fault,
)
from .models import MODELS, SimModel, default_latency_scale, get_model
from .modes import Mode
from .request import RequestError, parse_chat_request
from .responses import JsonResponse, openai_error
from .strict import refusal
from .usage import PromptCache

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger(__name__)

FAULT_TIMEOUT_ENV = "LLMSIM_FAULT_TIMEOUT_SECONDS"
DEFAULT_FAULT_TIMEOUT_S = 30.0
"""How long a ``timeout`` fault stalls: longer than any sane client timeout."""

MODELS_CREATED = 1_735_689_600  # 2025-01-01, fixed so the model list is deterministic
RECENT_REQUESTS = 200
"""How many chat request bodies ``SimApp.recent_requests`` keeps, for tests to inspect."""


class Interruption(Enum):
    """Why a simulated wait ended early, and what (if anything) to answer then."""

    DISCONNECTED = "disconnected"
    CLOSING = "closing"

    @property
    def response(self) -> JsonResponse | None:
        if self is Interruption.DISCONNECTED:
            return None  # nobody is listening any more
        return openai_error(
            503,
            "llmsim is shutting down.",
            type_="server_error",
            headers={"x-should-retry": "false"},
        )


@dataclass(frozen=True)
class SimSettings:
    """Knobs that differ between the test suite (instant) and demos (realistic)."""

    latency_scale: float = 1.0
    fault_timeout_s: float = DEFAULT_FAULT_TIMEOUT_S
    errors: ErrorModel = field(default_factory=ErrorModel)
    """The declared error model (see ``error_model``)."""

    @classmethod
    def from_env(
        cls, latency_scale: float | None = None, fault_timeout_s: float | None = None,
        small_confident_error_rate: float | None = None,
    ) -> SimSettings:
        """Explicit arguments win; otherwise ``LLMSIM_*`` environment variables, then defaults."""
        if latency_scale is None:
            latency_scale = default_latency_scale()
        if fault_timeout_s is None:
            fault_timeout_s = float(os.environ.get(FAULT_TIMEOUT_ENV, DEFAULT_FAULT_TIMEOUT_S))
        return cls(latency_scale=max(latency_scale, 0.0), fault_timeout_s=fault_timeout_s,
                   errors=ErrorModel.with_small_error_rate(small_confident_error_rate))


@dataclass
class SimApp:
    """The simulator as an ASGI callable; its caches live as long as the instance."""

    settings: SimSettings = field(default_factory=SimSettings.from_env)
    prompt_cache: PromptCache = field(default_factory=PromptCache)
    fault_ledger: FaultLedger = field(default_factory=FaultLedger)
    samples: SampleCounter = field(default_factory=SampleCounter)
    recent_requests: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=RECENT_REQUESTS))
    """The latest chat request bodies, newest last: what a test asserts a client sent."""
    _closing: asyncio.Event | None = field(default=None, init=False, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)

    def close(self) -> None:
        """Wake every waiting call so it answers 503 at once; safe to call from any thread.

        Without this, stopping the server would wait out stalled ``timeout`` faults.
        """
        if self._loop is not None and self._closing is not None:
            self._loop.call_soon_threadsafe(self._closing.set)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if self._closing is None:
            self._loop, self._closing = asyncio.get_running_loop(), asyncio.Event()
        body = await _read_body(receive)
        if body is None:
            return  # the client left before sending its request
        try:
            response = await self._route(scope, body, receive)
        except Exception:  # a test double must answer with OpenAI's shape, never drop the line
            log.exception("llmsim failed on %s %s", scope["method"], scope["path"])
            response = openai_error(500, "llmsim internal error", type_="server_error")
        if response is not None:
            await _send_json(send, response)

    async def _route(self, scope: Scope, body: bytes, receive: Receive) -> JsonResponse | None:
        method, path = scope["method"], scope["path"].rstrip("/")
        if path == "/healthz" and method in {"GET", "HEAD"}:
            return JsonResponse(200, {"status": "ok"})
        if path == "/v1/models" and method == "GET":
            cards = [_model_card(model) for model in MODELS.values()]
            return JsonResponse(200, {"object": "list", "data": cards})
        if path.startswith("/v1/models/") and method == "GET":
            name = path.removeprefix("/v1/models/")
            model = get_model(name)
            return JsonResponse(200, _model_card(model)) if model else _unknown_model(name)
        if path == "/v1/chat/completions":
            if method != "POST":
                return openai_error(405, f"Method {method} not allowed.", code="method_not_allowed")
            return await self._chat(scope, body, receive)
        return openai_error(404, f"Unknown path {method} {scope['path']}.", code="not_found")

    async def _chat(self, scope: Scope, body: bytes, receive: Receive) -> JsonResponse | None:
        try:
            request = parse_chat_request(body)
            fault = requested_fault(_header(scope, FAULT_HEADER), request.messages)
        except (RequestError, FaultSpecError) as exc:
            return openai_error(400, str(exc), param=getattr(exc, "param", None))
        self.recent_requests.append(request.body)
        model = get_model(request.model)
        if model is None:
            return _unknown_model(request.model)
        refused = refusal(request, model)
        if refused is not None:
            return refused

        kind = None
        if fault and self.fault_ledger.should_fail(conversation_key(request.messages), fault):
            kind = fault.kind
        if kind in {FaultKind.RATE_LIMIT, FaultKind.SERVER_ERROR}:
            return error_response(kind)
        if kind is FaultKind.TIMEOUT:
            interrupted = await self._wait(self.settings.fault_timeout_s, receive)
            if interrupted:
                return interrupted.response

        sample = self.samples.sample(content_key(request), request.temperature, request.seed)
        response = complete(
            request, model, self.prompt_cache, malformed=kind is FaultKind.MALFORMED,
            sample=sample, errors=self.settings.errors,
        )
        if kind is not None:
            response = distort(kind, response)
        if Mode.NO_USAGE in model.modes:
            response = distort(FaultKind.NO_USAGE, response)
        interrupted = await self._wait(model.latency_seconds(self.settings.latency_scale), receive)
        return interrupted.response if interrupted else response

    async def _wait(self, seconds: float, receive: Receive) -> Interruption | None:
        """Sleep ``seconds`` unless the client hangs up or the server is closing."""
        if seconds <= 0:
            return None
        assert self._closing is not None
        waits = {
            asyncio.ensure_future(asyncio.sleep(seconds)): None,
            asyncio.ensure_future(_until_disconnect(receive)): Interruption.DISCONNECTED,
            asyncio.ensure_future(self._closing.wait()): Interruption.CLOSING,
        }
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        return next((waits[task] for task in done if waits[task]), None)


def create_app(latency_scale: float | None = None, fault_timeout_s: float | None = None,
               small_confident_error_rate: float | None = None) -> SimApp:
    """A fresh simulator (empty prompt cache, fault and sample counters) with the given
    settings."""
    return SimApp(SimSettings.from_env(latency_scale, fault_timeout_s,
                                       small_confident_error_rate))


def _model_card(model: SimModel) -> dict[str, Any]:
    return {"id": model.name, "object": "model", "created": MODELS_CREATED, "owned_by": "llmsim"}


def _unknown_model(name: str) -> JsonResponse:
    return openai_error(
        404,
        f"The model `{name}` does not exist or you do not have access to it.",
        code="model_not_found",
    )


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.lower().encode()
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_json(send: Send, response: JsonResponse) -> None:
    payload = response.encoded()
    headers = [
        (b"content-type", response.content_type.encode()),
        (b"content-length", str(len(payload)).encode()),
        *((k.encode(), v.encode()) for k, v in response.headers.items()),
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
