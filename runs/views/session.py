"""A lost session or CSRF token in the middle of an action: say so plainly, keep the work.

Without this, an htmx action whose session expired followed ``login_required``'s redirect
and swapped the login page into the decision card, and logging in from there landed on
``GET …/decide/`` (405); without the CSRF cookie the button silently did nothing (403).
Now an htmx request gets a small alert (401, or 403 for a CSRF failure) that
``static/js/console.js`` shows after saving what was typed, with a "Log in again" link back
to the page the operator was on; a plain form post is sent to log in with ``next`` set to
that page, never to the POST URL.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.csrf import csrf_failure as django_csrf_failure

# Tells console.js that this error answer is about the session, not the action.
HEADER = "X-AgentDesk-Session"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def return_to(request: HttpRequest) -> str:
    """The page the operator was on (path and query), from htmx's ``HX-Current-URL`` or the
    ``Referer``; the home page when neither is one of ours."""
    for candidate in (request.headers.get("HX-Current-URL", ""),
                      request.headers.get("Referer", "")):
        if candidate and url_has_allowed_host_and_scheme(
                candidate, {request.get_host()}, require_https=request.is_secure()):
            parts = urlsplit(candidate)
            login = resolve_url(settings.LOGIN_URL)
            if parts.path and not parts.path.startswith(login):
                return parts.path + (f"?{parts.query}" if parts.query else "")
    return "/"


def login_url(request: HttpRequest) -> str:
    return f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': return_to(request)})}"


def session_problem(request: HttpRequest, kind: str, status: int) -> HttpResponse:
    """The htmx answer: the alert fragment, never a page."""
    response = render(request, "registration/session_expired.html",
                      {"kind": kind, "login_url": login_url(request)}, status=status)
    response[HEADER] = kind
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: htmx gets the same alert as an expired session (the token
    goes with the session: a new login, or cleared cookies); a plain post gets the styled
    403 page (``templates/403_csrf.html`` through Django's own view)."""
    if request.headers.get("HX-Request"):
        return session_problem(request, "csrf", status=403)
    return django_csrf_failure(request, reason=reason)


def _is_login_redirect(request: HttpRequest, response: HttpResponse) -> bool:
    if response.status_code != 302 or getattr(request, "user", None) is None:
        return False
    if request.user.is_authenticated:
        return False
    location = urlsplit(response.get("Location", ""))
    return location.path == resolve_url(settings.LOGIN_URL)


class SessionExpiredMiddleware:
    """Turns ``login_required``'s redirect into an answer that fits the request: a 401 alert
    for htmx (its XHR would follow the redirect and swap the login page in), and for a
    plain POST a login link whose ``next`` is the page the form was on (after logging in,
    the browser GETs ``next``: a POST-only URL would answer 405)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not _is_login_redirect(request, response):
            return response
        if request.headers.get("HX-Request"):
            return session_problem(request, "expired", status=401)
        if request.method not in SAFE_METHODS:
            response["Location"] = login_url(request)
        return response
