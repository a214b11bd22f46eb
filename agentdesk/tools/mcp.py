"""The tools of an MCP server as agentdesk tools (issue 14, item 4).

An agent can use the tools of a Model Context Protocol server, over streamable HTTP or
stdio, through the official ``mcp`` SDK. Each listed tool becomes an ordinary
``agentdesk.runtime.tools.Tool``, so it gets everything our own tools get: its arguments
validated against the server's ``inputSchema`` before anything is sent, a timeout, retries
of transient failures, the shared circuit breaker, the ledger and idempotency key, and the
approval policy. A tool is **side-effecting unless the server marks it read-only**
(``annotations.readOnlyHint``): a hint we cannot verify, so we assume the worse.

In code::

    import os

    from agentdesk.runtime.agent import AgentSpec
    from agentdesk.runtime.tools import ToolRegistry
    from agentdesk.tools.mcp import McpServer, mcp_tools

    tickets = McpServer("tickets", url="https://mcp.example.com/mcp",
                        headers={"Authorization": f"Bearer {os.environ['TICKETS_TOKEN']}"})
    tools = ToolRegistry()              # the agent's own tools …
    tools.add(lookup_order)             # (a Tool, e.g. made with @tools.tool(args=…))
    for tool in mcp_tools(tickets, only=["create_ticket", "find_ticket"]).tools.values():
        tools.add(tool)                 # … and the server's, in one registry
    AGENT = AgentSpec(slug="helpdesk", name="Helpdesk", instructions="…", tools=tools)

``mcp_tools`` lists the server when it is called (at import for the example above: a
server that is down makes the import fail with ``McpUnavailable``, naming it). A stdio
server is ``McpServer("files", command=("npx", "-y", "@acme/files-mcp"), env={...})``.

Listings are cached per server configuration for ``LISTING_TTL_S`` (60 s), so a worker does
not list the server on every step while a changed server is picked up within a minute;
``clear_cache`` forgets them (after an admin edits a server, say). A call that finds the
tool's schema changed on the server forgets that server's listing at once.

Calls: each call opens its own session (see ``mcp_session``) and sends the run's
idempotency key in the request's ``_meta`` as ``{"idempotency_key": "<run id>:<step>"}``,
the protocol's own place for request metadata, on both transports (an HTTP header would
reach the server's HTTP layer, not the tool, and would be sent with the handshake too).
How failures are mapped is in ``mcp_calls``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import jsonschema
from mcp import types as mcp_types

from agentdesk.runtime.tools import Tool, ToolRegistry

from .mcp_calls import McpCall
from .mcp_session import Stderr, all_tools, describe, first_cause, open_session, run_sync, where

log = logging.getLogger(__name__)

LISTING_TTL_S = 60.0
# The names a model may call (OpenAI's rule for function names); MCP allows more (dots).
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class McpServer:
    """How to reach one MCP server: a streamable HTTP ``url`` or a stdio ``command``.

    Plain values only, so an admin row maps onto it field by field. ``headers`` (HTTP) and
    ``env`` (stdio) hold resolved values, secrets included: they are kept out of ``repr``
    and out of every error message. ``tool_prefix`` goes before each tool's name in the
    agent (two servers may both have a ``search``); the server is called by its own name.
    """

    name: str
    url: str = ""
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float = 10.0  # per call attempt
    list_timeout_s: float = 5.0  # connecting and listing the tools
    tool_prefix: str = ""

    def __post_init__(self) -> None:
        # normalise: a list from a JSON field becomes a tuple, dicts are copied (a caller
        # mutating its dict afterwards must not change this frozen config)
        object.__setattr__(self, "command", tuple(str(part) for part in self.command))
        object.__setattr__(self, "env", {str(k): str(v) for k, v in self.env.items()})
        object.__setattr__(self, "headers", {str(k): str(v) for k, v in self.headers.items()})
        if not self.name.strip():
            raise ValueError("an MCP server needs a name")
        if bool(self.url) == bool(self.command):
            raise ValueError(f"MCP server {self.name!r}: give exactly one of url (streamable "
                             "HTTP) or command (stdio)")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"MCP server {self.name!r}: url must start with http:// or "
                             f"https://, not {self.url!r}")
        if self.env and not self.command:
            raise ValueError(f"MCP server {self.name!r}: env is for a stdio command")
        if self.headers and not self.url:
            raise ValueError(f"MCP server {self.name!r}: headers are for an HTTP url")
        if self.timeout_s <= 0 or self.list_timeout_s <= 0:
            raise ValueError(f"MCP server {self.name!r}: timeouts must be positive")
        if self.tool_prefix and not TOOL_NAME.match(self.tool_prefix):
            raise ValueError(f"MCP server {self.name!r}: tool_prefix may use letters, digits, "
                             "_ and - only")

    def key(self) -> str:
        """Everything that identifies this configuration (the listing cache's key)."""
        return json.dumps([self.name, self.url, self.command, sorted(self.env.items()),
                           sorted(self.headers.items()), self.timeout_s, self.tool_prefix])

    def __hash__(self) -> int:  # the dict fields are not hashable; the key is
        return hash(self.key())

    @property
    def where(self) -> str:
        return where(self)


class McpToolsError(Exception):
    """The tools of an MCP server could not be used as configured."""


class McpUnavailable(McpToolsError):
    """The server is down, refused us, or did not answer in time."""

    def __init__(self, server: McpServer, reason: str) -> None:
        super().__init__(f"MCP server {server.name!r} ({server.where}) is unavailable: {reason}")
        self.server = server
        self.reason = reason


@dataclass(frozen=True)
class ServerTools:
    """One listing: the usable tools, and why any other tool was left out."""

    server: McpServer
    tools: tuple[Tool, ...]
    problems: tuple[str, ...]  # one sentence per skipped tool, naming server and tool
    listed_at: float  # time.time()

    def registry(self, only: Iterable[str] | None = None) -> ToolRegistry:
        """These tools in a registry; ``only`` (the server's tool names) picks some. A name
        the listing lacks raises McpToolsError, saying why when the tool was skipped."""
        by_mcp_name = {_mcp_name(tool): tool for tool in self.tools}
        wanted = list(by_mcp_name) if only is None else list(only)
        missing = [name for name in wanted if name not in by_mcp_name]
        if missing:
            said = [p for p in self.problems if any(f"tool {n!r}" in p for n in missing)]
            detail = "; ".join(said) or f"it offers {', '.join(sorted(by_mcp_name)) or 'none'}"
            raise McpToolsError(f"MCP server {self.server.name!r} ({self.server.where}) has no "
                                f"usable tool named {', '.join(map(repr, missing))}: {detail}")
        registry = ToolRegistry()
        for name in wanted:
            registry.add(by_mcp_name[name])
        return registry


def mcp_tools(server: McpServer, only: Iterable[str] | None = None) -> ToolRegistry:
    """The server's tools (or those named in ``only``) as a registry, for agents defined in
    code. Skipped tools are logged; McpUnavailable if the server cannot be listed."""
    listing = list_tools(server)
    for problem in listing.problems:
        log.warning("%s", problem)
    return listing.registry(only)


def list_tools(server: McpServer, *, fresh: bool = False) -> ServerTools:
    """The server's tools as agentdesk tools, from the cache unless older than
    ``LISTING_TTL_S`` (or ``fresh``). McpUnavailable if it is down or slower than
    ``list_timeout_s``; a tool whose input schema is not a JSON schema is left out and
    reported in ``problems``, so one bad tool does not cost the agent the others."""
    key = server.key()
    with _lock:
        cached = _listings.get(key)
    if cached is not None and not fresh and time.monotonic() < cached[0]:
        return cached[1]
    definitions = _fetch(server)
    tools: list[Tool] = []
    problems: list[str] = []
    for definition in definitions:
        try:
            tools.append(build_tool(server, definition))
        except McpToolsError as exc:
            problems.append(str(exc))
    listing = ServerTools(server, tuple(tools), tuple(problems), time.time())
    with _lock:
        _listings[key] = (time.monotonic() + LISTING_TTL_S, listing)
    return listing


def clear_cache(server: McpServer | None = None) -> None:
    """Forget the listing of one server configuration, or of all."""
    with _lock:
        if server is None:
            _listings.clear()
        else:
            _listings.pop(server.key(), None)


def build_tool(server: McpServer, definition: mcp_types.Tool | Mapping[str, Any]) -> Tool:
    """One listed tool (the SDK's model, or its JSON as stored) as an agentdesk ``Tool``.

    McpToolsError, naming server and tool, when it cannot be offered to a model. The same
    definition on the same server gives back the same ``Tool`` object: the runtime caches
    each tool's validator and schema by identity, so re-listing every minute must not mint
    new ones.
    """
    if not isinstance(definition, mcp_types.Tool):
        definition = mcp_types.Tool.model_validate(dict(definition))
    signature = json.dumps(definition.model_dump(mode="json", by_alias=True,
                                                 exclude_none=True), sort_keys=True)
    memo_key = (server.key(), definition.name)
    with _lock:
        known = _built.get(memo_key)
    if known is not None and known[0] == signature:
        return known[1]
    name = server.tool_prefix + definition.name
    skipped = f"MCP server {server.name!r} ({server.where}): tool {definition.name!r} skipped"
    if not TOOL_NAME.match(name):
        raise McpToolsError(f"{skipped}: {name!r} is not a name a model can call (letters, "
                            "digits, _ and -, at most 64)")
    try:
        jsonschema.Draft202012Validator.check_schema(definition.inputSchema)
    except jsonschema.SchemaError as exc:
        raise McpToolsError(f"{skipped}: its input schema is not a valid JSON schema "
                            f"({exc.message})") from None
    read_only = bool(definition.annotations and definition.annotations.readOnlyHint)
    tool = Tool(
        name=name,
        description=(definition.description or definition.title or "").strip(),
        fn=McpCall(server, definition, side_effect=not read_only,
                   on_stale=lambda: clear_cache(server)),
        args_schema=dict(definition.inputSchema),
        side_effect=not read_only,
        timeout_s=server.timeout_s,
    )
    with _lock:
        _built[memo_key] = (signature, tool)
    return tool


def _mcp_name(tool: Tool) -> str:
    fn = tool.fn
    return fn.definition.name if isinstance(fn, McpCall) else tool.name


def _fetch(server: McpServer) -> list[mcp_types.Tool]:
    """Every tool the server lists (all pages), within ``list_timeout_s``."""
    stderr = Stderr()

    async def fetch() -> list[mcp_types.Tool]:
        with anyio.fail_after(server.list_timeout_s):
            async with open_session(server, server.list_timeout_s, stderr) as session:
                return await all_tools(session)

    try:
        return run_sync(fetch)
    except Exception as exc:
        cause = first_cause(exc)
        if isinstance(cause, TimeoutError):
            reason = f"no answer within {server.list_timeout_s:g}s"
        else:
            reason = describe(cause)
        if stderr.tail:
            reason += f"; its stderr ended with: {stderr.tail}"
        raise McpUnavailable(server, reason) from exc


_lock = threading.Lock()
_listings: dict[str, tuple[float, ServerTools]] = {}
_built: dict[tuple[str, str], tuple[str, Tool]] = {}
