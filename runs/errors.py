"""Every error the application refuses a request with: one tree, each carrying its code and
HTTP status, at the bottom of the import graph so any layer may raise one.

The API answers ``{"error": {"code", "message", "fields"?}}`` with ``status``; the console
shows ``message`` (and ``fields`` next to the inputs) with the same status. Nothing else
decides what an error means over HTTP: ``http_status``/``body`` below are the one mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

Fields = dict[str, list[str]]


class AppError(Exception):
    """A request we refuse, with a message fit to show the person who made it."""

    code: ClassVar[str] = "invalid"
    status: ClassVar[int] = 422

    def __init__(self, message: str, fields: Fields | None = None, *,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields: Fields = fields or {}
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON error body (``fields`` only when there are some)."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return body


class Invalid(AppError):
    """The request is well-formed but asks for something we refuse (422)."""


class BadRequest(AppError):
    code, status = "bad_request", 400


class MalformedJSON(BadRequest):
    code = "malformed_json"


class InvalidCursor(BadRequest):
    code = "invalid_cursor"


class Unauthorized(AppError):
    code, status = "unauthorized", 401


class Forbidden(AppError):
    code, status = "forbidden", 403


class InsufficientScope(Forbidden):
    code = "insufficient_scope"


class NotFound(AppError):
    code, status = "not_found", 404


class InputInvalid(Invalid):
    code = "invalid_input"


class RequestInvalid(Invalid):
    """The request does not match the API's schema."""

    code = "invalid_request"


class CallbackRefused(Invalid):
    code = "invalid_callback_url"


class AgentNotInstalled(Invalid):
    """An Agent row whose code is not installed (no AGENTDESK_AGENTS path or entry point)."""

    code = "agent_not_installed"


class ModelUnpriced(Invalid):
    """A run paused for an unpriced model cannot go on until an admin sets its price."""

    code = "model_unpriced"


class InputTooLarge(AppError):
    code, status = "too_large", 413


class DocumentRejected(Invalid):
    """A knowledge document that cannot be indexed: its type, binary content, no text."""

    code = "invalid_document"


class DocumentTooLarge(InputTooLarge):
    """A knowledge document over ``KNOWLEDGE_MAX_BYTES``."""

    code = "document_too_large"


class RateLimited(AppError):
    code, status = "rate_limited", 429


class Conflict(AppError):
    """The request lost to the current state of the object (409): re-read and decide."""

    code, status = "conflict", 409


class AlreadyDecided(Conflict):
    code = "already_decided"


class ClaimedByOther(Conflict):
    """Someone else holds a live claim: the escalation is still open, but not yours."""

    code = "claimed_by_other"


class NotOpen(Conflict):
    code = "not_open"


class RunNotWaiting(Conflict):
    code = "run_not_waiting"


class RunFinished(Conflict):
    code = "run_finished"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


def fields_from(errors: Iterable[Mapping[str, Any]], *, default: str = "input",
                prefix: str = "", drop: int = 0) -> Fields:
    """Pydantic-style errors (``loc``, ``msg``) as ``{"a.b": [messages]}``.

    ``drop`` leading ``loc`` parts are skipped (a framework's ``body``/parameter name);
    ``prefix`` names where the validated value sits in the request (``input.``).
    """
    fields: Fields = {}
    for err in errors:
        parts = [str(p) for p in err.get("loc", ())][drop:]
        name = prefix + (".".join(parts) or default)
        fields.setdefault(name, []).append(str(err.get("msg", "Invalid value.")))
    return fields
