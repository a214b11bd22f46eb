"""The API's side of the error tree (``runs.errors``): every refusal is JSON
``{"error": {"code", "message", "fields"?}}`` with the error's own 4xx status; ninja's own
errors (schema, auth, parse) are translated into the tree first. 5xx only for our faults."""

from __future__ import annotations

import logging
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja.errors import AuthenticationError, HttpError, ValidationError

from .. import errors

log = logging.getLogger(__name__)

# Django's own responses under /api/ (404, 405, CSRF…) get a code by their status.
STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
    422: "invalid_request", 429: "rate_limited", 500: "internal_error",
}


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


def on_app_error(request: HttpRequest, exc: errors.AppError) -> HttpResponse:
    response = JsonResponse({"error": exc.body()}, status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


def schema_error(exc: ValidationError) -> errors.RequestInvalid:
    """ninja's ``loc`` is ``(body|query|path, [parameter name,] field…)``: name the field as
    the request does (``input.message``, ``limit``)."""
    located = []
    for err in exc.errors:
        loc = [str(p) for p in err.get("loc", ())]
        parts = loc[1:]
        if loc[:1] == ["body"] and len(parts) > 1:
            parts = parts[1:]  # drop the view's parameter name ("payload")
        located.append({**err, "loc": parts or loc[:1] or ["request"]})
    return errors.RequestInvalid("The request does not match the schema.",
                                 errors.fields_from(located, default="request"))


def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc, AuthenticationError):
        return on_app_error(request, errors.Unauthorized(
            "Missing or invalid API key: send 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": 'Bearer realm="agentdesk"'}))
    message = str(exc)
    if exc.status_code == 400 and "parse" in message.lower():
        return on_app_error(request, errors.MalformedJSON("The request body is not valid JSON."))
    return error_response(exc.status_code, STATUS_CODES.get(exc.status_code, "error"), message)


def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("API request failed: %s %s", request.method, request.path)
    return error_response(500, "internal_error", "Something went wrong on our side.")


def install(api) -> None:
    api.add_exception_handler(errors.AppError, on_app_error)
    api.add_exception_handler(
        ValidationError, lambda request, exc: on_app_error(request, schema_error(exc)))
    api.add_exception_handler(HttpError, on_http_error)
    api.add_exception_handler(
        Http404, lambda request, exc: on_app_error(
            request, errors.NotFound(str(exc) or "Not found.")))
    api.add_exception_handler(Exception, on_unexpected)
