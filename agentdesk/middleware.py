"""A request id on every request: taken from ``X-Request-ID`` when the caller (or a proxy)
sends a sane one, else generated; bound into structlog's context so every log line of the
request carries it, and echoed in the response."""

from __future__ import annotations

import re
import uuid

import structlog
from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get(HEADER, "")
        request_id = given if VALID.match(given) else uuid.uuid4().hex
        request.request_id = request_id
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            response = self.get_response(request)
        response[HEADER] = request_id
        return response
