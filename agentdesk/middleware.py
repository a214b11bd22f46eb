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


class SyncChainEnd:
    """Last in ``MIDDLEWARE``: keeps the whole middleware chain synchronous under ASGI.

    Django runs a middleware that can do both (``MiddlewareMixin``: sessions, CSRF, auth,
    messages, htmx, …) in the mode of the one below it, and the innermost handler is async
    under ASGI. Without this, those seven ran async below WhiteNoise (sync only, so Django
    hopped from its thread back to the event loop there), and each of their
    ``process_request``/``process_response`` calls went through ``sync_to_async``: a thread
    hop and back, fourteen times per request. Ending the chain with a sync-only middleware
    makes every one above it run sync, in the one thread Django already gives the request
    (the views are sync anyway); one hop to the async handler and back remains at the end.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
