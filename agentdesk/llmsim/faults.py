"""Fault injection: make chosen calls fail the way OpenAI fails, so retry paths get exercised.

A fault is requested per call with the header ``X-Sim-Fault: <kind>[x<N>]`` or per
conversation with the marker ``[sim-fault:<kind>[x<N>]]`` anywhere in the first user
message (the header wins when both are present). With ``xN`` only the first N calls of a
conversation step fail and the retries after them succeed; without it every call fails.

Besides failing the way OpenAI fails (429, 500, a stall, broken JSON content), a call can
be answered the way a broken or sloppy endpoint answers, to prove the gateway never
crashes and never bills $0 silently: ``nousage`` (no ``usage`` object), ``overreport``
(every usage count doubled), ``html`` (a 200 HTML page), ``emptychoices``, ``nomessage``
(a choice without ``message``), ``truncated`` (the JSON body cut in half) and ``error200``
(a 200 carrying an ``error`` object).
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .responses import JsonResponse, openai_error
from .usage import content_text

FAULT_HEADER = "x-sim-fault"
MALFORMED_CONTENT = '{"answer": "oops'
"""Truncated JSON, as a model cut off mid-object would produce."""

_SPEC_RE = re.compile(r"^([a-z0-9]+?)(?:x(\d+))?$")
MARKER_RE = re.compile(r"\[sim-fault:([^\]]*)\]", re.IGNORECASE)


class FaultKind(StrEnum):
    """The failure modes the simulator can produce."""

    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    TIMEOUT = "timeout"
    MALFORMED = "malformed"
    NO_USAGE = "nousage"
    OVERREPORT = "overreport"
    HTML = "html"
    EMPTY_CHOICES = "emptychoices"
    NO_MESSAGE = "nomessage"
    TRUNCATED = "truncated"
    ERROR_200 = "error200"


BODY_FAULTS = frozenset({
    FaultKind.NO_USAGE, FaultKind.OVERREPORT, FaultKind.HTML, FaultKind.EMPTY_CHOICES,
    FaultKind.NO_MESSAGE, FaultKind.TRUNCATED, FaultKind.ERROR_200,
})
"""Faults that change a successful completion's body rather than replace the call."""

OVERREPORT_FACTOR = 2
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Welcome</title></head>"
    b"<body><h1>It works!</h1><p>This is not an API (simulated by llmsim).</p></body></html>\n"
)


class FaultSpecError(ValueError):
    """A fault header or marker names a kind the simulator does not know."""


@dataclass(frozen=True)
class FaultSpec:
    """Which fault to inject, and for how many calls (None = every call)."""

    kind: FaultKind
    times: int | None = None


def parse_fault_spec(text: str) -> FaultSpec:
    """Parse ``429``, ``500x2``, ``timeout``, ``malformedx1`` ... into a FaultSpec."""
    match = _SPEC_RE.match(text.strip().lower())
    kinds = {kind.value: kind for kind in FaultKind}
    if match is None or match.group(1) not in kinds:
        known = ", ".join(kinds)
        raise FaultSpecError(f"Unknown sim fault {text!r}; expected one of {known}, plus xN.")
    times = int(match.group(2)) if match.group(2) is not None else None
    return FaultSpec(kinds[match.group(1)], times)


def first_user_text(messages: Sequence[dict[str, Any]]) -> str:
    """Text of the first user message, where conversation-wide markers live."""
    for message in messages:
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def strip_markers(text: str) -> str:
    """The text without fault markers, so brains never mistake ``[sim-fault:500]`` for data."""
    return " ".join(MARKER_RE.sub(" ", text).split())


def requested_fault(header: str | None, messages: Sequence[dict[str, Any]]) -> FaultSpec | None:
    """The fault this call asks for, from the header or else from the first user message."""
    if header is not None and header.strip():
        return parse_fault_spec(header)
    match = MARKER_RE.search(first_user_text(messages))
    return parse_fault_spec(match.group(1)) if match else None


def conversation_key(messages: Sequence[dict[str, Any]]) -> str:
    """Identifies one conversation regardless of model and turn: ``xN`` means the first N
    calls of the whole conversation fail (a retry or a repair turn then succeeds)."""
    return hashlib.sha256(first_user_text(messages).encode()).hexdigest()


class FaultLedger:
    """Counts faulted calls per conversation so ``xN`` faults stop after N failures."""

    def __init__(self, max_entries: int = 20_000) -> None:
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def should_fail(self, key: str, spec: FaultSpec) -> bool:
        """Record one call for ``key`` and say whether this call must fail."""
        with self._lock:
            count = self._counts.pop(key, 0) + 1
            self._counts[key] = count
            while len(self._counts) > self._max_entries:
                self._counts.popitem(last=False)
        return spec.times is None or count <= spec.times


def error_response(kind: FaultKind) -> JsonResponse:
    """The HTTP failure for the status-code faults, shaped like OpenAI's."""
    if kind is FaultKind.RATE_LIMIT:
        return openai_error(
            429,
            "Rate limit reached for requests (simulated by llmsim). Please try again in 1s.",
            type_="requests",
            code="rate_limit_exceeded",
            headers={"retry-after": "1", "retry-after-ms": "50"},
        )
    if kind is FaultKind.SERVER_ERROR:
        return openai_error(
            500,
            "The server had an error while processing your request (simulated by llmsim).",
            type_="server_error",
            code=None,
        )
    raise ValueError(f"{kind} is not answered with an HTTP error")


def distort(kind: FaultKind, response: JsonResponse) -> JsonResponse:
    """A successful completion answered the broken way ``kind`` names; errors pass as they are."""
    if response.status != 200 or kind not in BODY_FAULTS:
        return response
    body = copy.deepcopy(response.body)
    if kind is FaultKind.NO_USAGE:
        body.pop("usage", None)
    elif kind is FaultKind.OVERREPORT:
        body["usage"] = _scaled(body.get("usage") or {}, OVERREPORT_FACTOR)
    elif kind is FaultKind.HTML:
        return JsonResponse(200, {}, raw=HTML_PAGE, content_type="text/html; charset=utf-8")
    elif kind is FaultKind.EMPTY_CHOICES:
        body["choices"] = []
    elif kind is FaultKind.NO_MESSAGE:
        for choice in body.get("choices", []):
            choice.pop("message", None)
    elif kind is FaultKind.TRUNCATED:
        encoded = response.encoded()
        return JsonResponse(200, {}, raw=encoded[: len(encoded) // 2])
    elif kind is FaultKind.ERROR_200:
        body = {"error": {"message": "The server had an error while processing your request "
                                     "(simulated by llmsim, answered with HTTP 200).",
                          "type": "server_error", "param": None, "code": None}}
    return JsonResponse(200, body, response.headers)


def _scaled(usage: dict[str, Any], factor: int) -> dict[str, Any]:
    """Every count in ``usage`` (and its details) times ``factor``."""
    return {
        key: _scaled(value, factor) if isinstance(value, dict)
        else value * factor if isinstance(value, int) else value
        for key, value in usage.items()
    }
