"""The API's boundary, before any view runs: bodies above the limit are refused (413)
before they are parsed, every error under ``/api/`` is JSON — also Django's own 404, 405
and CSRF pages — and each response is counted for ``/metrics``."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse

from .. import metrics
from .errors import STATUS_CODES, error_response

log = logging.getLogger(__name__)
API_PREFIX = "/api/"
BODY_METHODS = {"POST", "PUT", "PATCH"}
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "X-Request-ID")


class ApiBoundaryMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        response = self.too_large(request) or self.get_response(request)
        response = as_json_error(response)
        metrics.count_api_request(request.method or "", response.status_code)
        return response

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX) or isinstance(exc, Http404 | PermissionDenied):
            return None  # Django answers those (404, 403), made JSON on the way out
        log.exception("API request failed: %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on our side.")

    @staticmethod
    def too_large(request: HttpRequest) -> HttpResponse | None:
        if request.method not in BODY_METHODS:
            return None
        limit = settings.API_MAX_BODY_BYTES
        refused = error_response(413, "too_large", f"The request body is over {limit} bytes.")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "bad_request", "Invalid Content-Length.")
        if declared > limit:
            return refused
        try:
            size = len(request.body)  # read once here; the view reuses it
        except RequestDataTooBig:
            return refused
        return refused if size > limit else None


def as_json_error(response: HttpResponse) -> HttpResponse:
    """Replace a non-JSON error page (Django's 404/405/403/500) with the API's error shape."""
    if response.status_code < 400 or response.get("Content-Type", "").startswith(
        "application/json"
    ):
        return response
    status = response.status_code
    messages = {404: "No such endpoint.", 405: "Method not allowed for this endpoint."}
    message = messages.get(status) or _text(response) or "Request refused."
    replaced = error_response(status, STATUS_CODES.get(status, "error"), message)
    for name in KEPT_HEADERS:
        if response.has_header(name):
            replaced[name] = response[name]
    return replaced


def _text(response: HttpResponse) -> str:
    if getattr(response, "streaming", False):
        return ""
    try:
        text = response.content.decode(errors="replace").strip()
    except Exception:
        return ""
    if text.startswith("<") or len(text) > 300:
        return ""
    try:
        json.loads(text)
    except ValueError:
        return text
    return ""
