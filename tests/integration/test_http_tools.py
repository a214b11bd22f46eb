"""HTTP tools defined in admin: a real local endpoint, the SSRF guard, secrets by name.

The tool is built as the worker builds it (``agent_specs.http_tool`` with the webhooks'
guard) and called through ``execute_tool``, so it gets the same timeout, retries and
validation as any tool.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from agentdesk.runtime.tools import ToolContext, execute_tool
from runs import agent_specs
from runs.models import HttpTool

SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "pattern": "^[0-9a-z/ ]+$"},
                   "verbose": {"type": "boolean"}, "note": {"type": "string"}},
    "required": ["order_id"],
    "additionalProperties": False,
}
CTX = ToolContext(run_id="7", idempotency_key="7:3")


class Endpoint:
    """Answers each request from a script of (status, body, content type); records them."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[tuple[int, bytes, str]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length) if length else b""
                endpoint.requests.append({"method": self.command, "path": self.path,
                                          "headers": dict(self.headers), "body": body})
                status, payload, kind = (endpoint.script.pop(0) if endpoint.script
                                         else (200, b'{"ok": true}', "application/json"))
                self.send_response(status)
                self.send_header("Content-Type", kind)
                if status in (301, 302):
                    self.send_header("Location", "http://169.254.169.254/latest")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _answer  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def endpoint(settings) -> Iterator[Endpoint]:
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True  # the endpoint is on 127.0.0.1
    server = Endpoint()
    yield server
    server.server.shutdown()
    server.server.server_close()


def tool_row(endpoint: Endpoint, **fields) -> HttpTool:
    values = {"name": "get_order", "description": "Look an order up.", "method": "GET",
              "url_template": endpoint.base + "/orders/{order_id}", "args_schema": SCHEMA,
              "header_env": {}, "read_only": True, "timeout_s": 2.0, **fields}
    return HttpTool(**values)


def build(row: HttpTool):
    return agent_specs.http_tool(agent_specs.http_config(row), route=agent_specs.route_http_tool)


def call(tool, args):
    return execute_tool(tool, CTX, args, sleep=lambda s: None)


def test_get_fills_the_path_encoded_sends_the_rest_as_query_and_the_idempotency_key(
        endpoint, monkeypatch):
    monkeypatch.setenv("ORDERS_TOKEN", "s3cret")
    tool = build(tool_row(endpoint, header_env={"Authorization": "ORDERS_TOKEN"}))
    endpoint.script.append((200, b'{"order_id": "10/77", "status": "shipped"}',
                            "application/json"))

    outcome = call(tool, {"order_id": "10/77", "verbose": True})

    assert outcome.ok and outcome.result == {"order_id": "10/77", "status": "shipped"}
    [req] = endpoint.requests
    assert urlsplit(req["path"]).path == "/orders/10%2F77"  # cannot climb out of the path
    assert parse_qs(urlsplit(req["path"]).query) == {"verbose": ["true"]}
    assert req["headers"]["Idempotency-Key"] == "7:3"
    assert req["headers"]["Authorization"] == "s3cret"
    assert not tool.side_effect


def test_post_sends_a_json_body_and_is_side_effecting_unless_read_only(endpoint):
    tool = build(tool_row(endpoint, method="POST", read_only=False,
                          url_template=endpoint.base + "/refunds"))
    outcome = call(tool, {"order_id": "1077", "note": "late"})
    assert outcome.ok
    assert json.loads(endpoint.requests[0]["body"]) == {"order_id": "1077", "note": "late"}
    assert tool.side_effect


def test_arguments_that_do_not_fit_the_schema_never_reach_the_endpoint(endpoint):
    outcome = call(build(tool_row(endpoint)), {"order_id": "1077", "extra": 1})
    assert not outcome.ok and outcome.attempts == 0
    assert "invalid arguments for get_order" in outcome.error
    assert endpoint.requests == []


def test_a_missing_secret_fails_clearly_without_a_request(endpoint, monkeypatch):
    monkeypatch.delenv("NOT_SET_TOKEN", raising=False)
    tool = build(tool_row(endpoint, header_env={"X-Api-Key": "NOT_SET_TOKEN"}))
    outcome = call(tool, {"order_id": "1077"})
    assert "needs the environment variable NOT_SET_TOKEN" in outcome.error
    assert endpoint.requests == []


def test_5xx_and_429_are_retried_4xx_non_json_and_redirects_are_not(endpoint):
    tool = build(tool_row(endpoint))
    endpoint.script += [(503, b"busy", "text/plain"), (429, b"", "text/plain"),
                        (200, b'{"ok": 1}', "application/json")]
    outcome = call(tool, {"order_id": "1"})
    assert outcome.ok and outcome.attempts == 3

    for status, body, kind, expected in [
        (404, b'{"detail": "no such order"}', "application/json", "HTTP 404"),
        (200, b"<html>login</html>", "text/html", "not JSON"),
        (302, b"", "text/plain", "redirects are not followed"),
    ]:
        endpoint.requests.clear()
        endpoint.script.append((status, body, kind))
        outcome = call(tool, {"order_id": "1"})
        assert not outcome.ok and expected in outcome.error
        assert len(endpoint.requests) == 1  # permanent: not retried


def test_the_webhook_guard_refuses_private_addresses_at_call_and_in_admin(endpoint, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    row = tool_row(endpoint)
    outcome = call(build(row), {"order_id": "1"})
    assert not outcome.ok and outcome.attempts == 1
    assert "tool's host 127.0.0.1 is a loopback address" in outcome.error
    assert endpoint.requests == []
    assert "url_template" in agent_specs.http_tool_problems(row)


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"url_template": "https://{host}.example.com/x"}, "url_template", "part of the host"),
    ({"url_template": "ftp://example.com/{order_id}"}, "url_template", "http:// or https://"),
    ({"url_template": "https://example.com/{missing}"}, "url_template", "missing not in"),
    ({"url_template": "https://example.com/{order_id!r}"}, "url_template", "plain"),
    ({"args_schema": {"type": "object", "properties": {"order_id": {"type": "strung"}}}},
     "args_schema", "not a valid JSON schema"),
    ({"args_schema": {"type": "array"}}, "args_schema", '"type": "object"'),
    ({"header_env": {"Authorization": "Bearer abc def"}}, "header_env", "environment variable"),
])
def test_bad_descriptions_are_named_by_field(endpoint, fields, field, message):
    found = agent_specs.http_tool_problems(tool_row(endpoint, **fields))
    assert any(message in m for m in found.get(field, [])), found
