"""HTTP responses the simulator sends, and OpenAI's error envelope."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class JsonResponse:
    """A status, a JSON body and extra headers, ready for the ASGI layer to send.

    ``raw`` replaces the encoded body: the faults that answer something that is not a
    well-formed JSON document (an HTML page, a truncated body) set it and ``content_type``.
    """

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body, ensure_ascii=False).encode()


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    """``{"error": {...}}`` exactly as OpenAI sends it, so the client raises the right class."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JsonResponse(status, body, headers or {})
