"""HTTP endpoints as tools: a method, a URL template and a JSON schema of the arguments.

An admin describes the endpoint (``runs.models.HttpTool``); this module turns the
description into an ordinary ``Tool``, so the call is validated against the schema, timed
out, retried when the failure may pass (connection errors, 429, 5xx), counted by the
circuit breaker, written to the ledger, and held for approval unless it is read-only.

- Arguments named in the URL template fill it (URL-encoded, path and query only: the host
  is fixed, so a model cannot choose where a request goes); the others go in the query
  string of a GET/DELETE or the JSON body of a POST/PUT/PATCH.
- Headers carry secrets by *environment variable name*: the value is read when the call is
  made and is never stored, shown or logged.
- Every request carries the run's idempotency key (``Idempotency-Key``), so an endpoint can
  make a retried side effect happen once.
- Where the request may go is decided by ``route`` — in AgentDesk the same guard as
  webhooks (``runs.callback_urls``): the host is resolved once, every address is checked,
  the request goes to a checked address, and redirects are not followed.
"""

from __future__ import annotations

import json
import os
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx

from agentdesk.runtime.tools import Tool, ToolContext, ToolError, TransientToolError

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BODY_METHODS = ("POST", "PUT", "PATCH")
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_RESPONSE_BYTES = 1_000_000
ERROR_SNIPPET = 300


class Target(Protocol):
    """One checked address to send the request to (``runs.callback_urls.Destination``)."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]


Route = Callable[[str], list[Target]]  # raises ValueError when the URL is refused


@dataclass(frozen=True)
class HttpToolConfig:
    name: str
    description: str
    method: str
    url_template: str  # e.g. "https://api.example.com/orders/{order_id}"
    args_schema: dict[str, Any]
    header_env: Mapping[str, str] = field(default_factory=dict)  # header → env var NAME
    read_only: bool = False
    timeout_s: float = 10.0


def template_fields(url_template: str) -> list[str]:
    """The ``{name}`` placeholders of a URL template; ValueError for anything else."""
    names = []
    try:
        parsed = list(string.Formatter().parse(url_template))
    except ValueError as exc:
        raise ValueError(f"malformed URL template: {exc}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"{{{name}}}: write plain placeholders such as {{order_id}}")
        names.append(name)
    return names


def problems(config: HttpToolConfig) -> dict[str, list[str]]:
    """What is wrong with a description, by field (empty when it can be used)."""
    found: dict[str, list[str]] = {}
    if config.method not in METHODS:
        found.setdefault("method", []).append(f"Use one of {', '.join(METHODS)}.")
    marked = re.sub(r"\{[^{}]*\}", "placeholder0", config.url_template)
    parts = urlsplit(marked)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        found.setdefault("url_template", []).append(
            "Start with http:// or https:// and a fixed host (placeholders only after it).")
    elif "placeholder0" in parts.netloc.lower():
        found.setdefault("url_template", []).append(
            "Placeholders may not be part of the host: put them in the path or query.")
    try:
        names = template_fields(config.url_template)
    except ValueError as exc:
        found.setdefault("url_template", []).append(str(exc).capitalize() + ".")
        names = []
    properties = (config.args_schema or {}).get("properties") or {}
    missing = [n for n in names if n not in properties]
    if missing:
        found.setdefault("url_template", []).append(
            f"{', '.join(missing)} not in the argument schema's properties.")
    for header, env_name in config.header_env.items():
        if not header or not env_name or not str(env_name).replace("_", "").isalnum():
            found.setdefault("header_env", []).append(
                f"{header!r}: map a header name to an environment variable name.")
    return found


def http_tool(config: HttpToolConfig, *, route: Route,
              transport: httpx.BaseTransport | None = None) -> Tool:
    """The ``Tool`` that calls the endpoint ``config`` describes."""
    placeholders = set(template_fields(config.url_template))

    def call(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        url = config.url_template.format(
            **{name: quote(str(args.get(name, "")), safe="") for name in placeholders})
        rest = {k: v for k, v in args.items() if k not in placeholders}
        headers = {**_secret_headers(config), IDEMPOTENCY_HEADER: ctx.idempotency_key,
                   "Accept": "application/json"}
        request: dict[str, Any] = {"headers": headers}
        if config.method in BODY_METHODS:
            request["json"] = rest
        elif rest:
            request["params"] = {k: v if isinstance(v, str) else json.dumps(v)
                                 for k, v in rest.items()}
        try:
            targets = route(url)
        except OSError as exc:  # the name did not resolve: may pass
            raise TransientToolError(f"{config.name}: {urlsplit(url).hostname} does not "
                                     f"resolve ({exc})") from None
        except ValueError as exc:  # refused by the guard: never retried
            raise ToolError(f"{config.name}: {exc}") from None
        return _send(config, targets, request, transport)

    return Tool(
        name=config.name,
        description=config.description,
        fn=call,
        args_schema=config.args_schema,
        side_effect=not config.read_only,
        timeout_s=config.timeout_s,
        # connection errors, 429 and 5xx are retried: each attempt carries the same
        # idempotency key, so an endpoint that honours it applies a side effect once
        max_attempts=3,
    )


def _secret_headers(config: HttpToolConfig) -> dict[str, str]:
    headers = {}
    for header, env_name in config.header_env.items():
        value = os.environ.get(env_name)
        if value is None:
            raise ToolError(f"{config.name}: header {header} needs the environment variable "
                            f"{env_name}, which is not set on this worker")
        headers[header] = value
    return headers


def _send(config: HttpToolConfig, targets: list[Target], request: dict[str, Any],
          transport: httpx.BaseTransport | None) -> dict[str, Any]:
    timeout = httpx.Timeout(config.timeout_s)
    last: Exception | None = None
    with httpx.Client(timeout=timeout, follow_redirects=False, transport=transport) as client:
        for target in targets:
            headers = {**request["headers"], **target.headers}
            try:
                response = client.request(
                    config.method, target.url, headers=headers,
                    params=request.get("params"), json=request.get("json"),
                    extensions=target.extensions)
            except httpx.ConnectError as exc:  # this address refused: try the next one
                last = exc
                continue
            except httpx.TimeoutException as exc:
                raise TransientToolError(f"{config.name}: no answer within "
                                         f"{config.timeout_s:g}s ({type(exc).__name__})") from None
            except httpx.HTTPError as exc:
                raise TransientToolError(f"{config.name}: {type(exc).__name__}: {exc}") from None
            return _result(config, response)
    raise TransientToolError(f"{config.name}: could not connect ({last})")


def _result(config: HttpToolConfig, response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    body = response.content[:MAX_RESPONSE_BYTES]
    if status == 429 or status >= 500:
        raise TransientToolError(f"{config.name}: HTTP {status} {_snippet(body)}".strip())
    if 300 <= status < 400:
        raise ToolError(f"{config.name}: HTTP {status} redirect to "
                        f"{response.headers.get('location', '?')} (redirects are not followed)")
    if status >= 400:
        raise ToolError(f"{config.name}: HTTP {status} {_snippet(body)}".strip())
    if not body.strip():
        return {"status": status}
    try:
        value = json.loads(body)
    except ValueError:
        kind = response.headers.get("content-type", "unknown content type")
        raise ToolError(f"{config.name}: HTTP {status} answered {kind}, not JSON: "
                        f"{_snippet(body)}") from None
    return value if isinstance(value, dict) else {"result": value}


def _snippet(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    return text if len(text) <= ERROR_SNIPPET else text[:ERROR_SNIPPET] + "…"
