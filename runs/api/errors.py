"""Every API error is JSON ``{"error": {"code", "message", "fields"?}}`` with a 4xx status
(5xx only for our own faults). ninja's own errors are mapped here too."""

from __future__ import annotations

import logging
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja.errors import AuthenticationError, HttpError, ValidationError

from .. import services

log = logging.getLogger(__name__)

STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
    422: "invalid_request", 429: "rate_limited", 500: "internal_error",
}
SERVICE_STATUS: list[tuple[type[services.ServiceError], int]] = [
    (services.NotFound, 404),
    (services.InputTooLarge, 413),
    (services.AlreadyDecided, 409),
    (services.RunNotWaiting, 409),
    (services.RunFinished, 409),
    (services.IdempotencyConflict, 409),
    (services.ServiceError, 422),
]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 fields: dict[str, list[str]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields, self.headers = fields, headers or {}


def error_response(status: int, code: str, message: str,
                   fields: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> JsonResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    response = JsonResponse({"error": body}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def on_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return error_response(exc.status, exc.code, exc.message, exc.fields, exc.headers)


def on_service_error(request: HttpRequest, exc: services.ServiceError) -> HttpResponse:
    status = next(code for cls, code in SERVICE_STATUS if isinstance(exc, cls))
    return error_response(status, exc.code, exc.message, exc.fields or None)


def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields: dict[str, list[str]] = {}
    for err in exc.errors:
        loc = [str(p) for p in err.get("loc", ())]
        parts = loc[1:]
        if loc[:1] == ["body"] and len(parts) > 1:
            parts = parts[1:]  # drop the view's parameter name ("payload")
        fields.setdefault(".".join(parts) or (loc[0] if loc else "request"), []).append(
            str(err.get("msg", "Invalid value.")))
    return error_response(422, "invalid_request", "The request does not match the schema.",
                          fields)


def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    headers = {}
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = 'Bearer realm="agentdesk"'
        message = "Missing or invalid API key: send 'Authorization: Bearer <key>'."
    else:
        message = str(exc)
    code = STATUS_CODES.get(exc.status_code, "error")
    if exc.status_code == 400 and "parse" in message.lower():
        code, message = "malformed_json", "The request body is not valid JSON."
    return error_response(exc.status_code, code, message, headers=headers)


def on_not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(404, "not_found", str(exc) or "Not found.")


def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("API request failed: %s %s", request.method, request.path)
    return error_response(500, "internal_error", "Something went wrong on our side.")


def install(api) -> None:
    api.add_exception_handler(ApiError, on_api_error)
    api.add_exception_handler(services.ServiceError, on_service_error)
    api.add_exception_handler(ValidationError, on_validation_error)
    api.add_exception_handler(HttpError, on_http_error)
    api.add_exception_handler(Http404, on_not_found)
    api.add_exception_handler(Exception, on_unexpected)
