"""Every page carries the browser hardening headers (issue 15, item 7): a
Content-Security-Policy that allows scripts only from our own files (no inline script, no
eval), no framing, no MIME sniffing, no referrer across origins."""

from __future__ import annotations

import re

import pytest
from django.test import Client

PAGES = ["/accounts/login/", "/inbox/", "/runs/new/", "/admin/", "/api/v1/docs", "/healthz"]


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


@pytest.mark.parametrize("path", PAGES)
def test_pages_carry_a_strict_csp_and_the_security_headers(demo, path):
    client = Client()
    client.force_login(demo["admin"])
    response = client.get(path)
    assert response.status_code in (200, 302), response.status_code
    csp = directives(response["Content-Security-Policy"])
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no hosts
    assert csp["default-src"] == ["'self'"] and csp["object-src"] == ["'none'"]
    assert csp["style-src"] == ["'self'"]  # inline style *attributes* only (style-src-attr)
    assert csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'self'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_console_pages_have_no_inline_script_or_handler(demo):
    """What the policy forbids is not in our templates either (the browser test proves the
    pages still work under it)."""
    client = Client()
    client.force_login(demo["operator"])
    for path in ("/inbox/", "/runs/new/", "/runs/", "/dashboard/", "/audit/", "/review/",
                 "/calibration/", "/accounts/login/"):
        html = client.get(path).content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert " src=" in tag, f"{path}: inline script {tag!r}"
        assert not re.search(r"\son[a-z]+=", html), f"{path}: an inline event handler"
        assert "javascript:" not in html
