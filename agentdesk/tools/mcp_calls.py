"""Calling one MCP tool from a worker's tool thread, and what its failures mean.

``McpCall`` is the ``fn`` of an MCP tool: ``execute_tool`` runs it with the tool's
timeout, retries and breaker, so it only has to say *which kind* of failure happened:

- the server could not be reached (connection refused, the stdio process did not start or
  died before the call was sent), an HTTP 5xx/429, or an MCP internal error:
  ``TransientToolError`` (retried with backoff; counts against the breaker). Nothing was
  done, or the server said it failed: with the idempotency key, trying again is safe;
- the connection was lost *after* a side-effecting call was sent, or it outlived our own
  time bound: ``ToolOutcomeUnknownError`` (never retried; a human checks). A read-only
  call in the same spot is transient;
- ``isError`` in the result: ``ToolError`` with the server's text (the backend answered);
- the server rejects the arguments or no longer knows the tool: ``ToolError``. The tools
  are listed again in the same session to tell a schema that changed since the listing
  from an ordinary bad call, and the message says which (and the stale listing is dropped);
- a 4xx other than 429 (bad credentials, wrong URL): ``ToolError`` naming the status.

The result is a JSON object: ``structuredContent`` when the server sends it (checked
against the tool's ``outputSchema``, as the SDK would), else ``{"content": [...]}`` with
each text block, and a note for each non-text block (an image, audio, a binary resource)
so that nothing is silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import jsonschema
from mcp import ClientSession, McpError
from mcp import types as mcp_types

from agentdesk.runtime.tools import (
    ToolContext,
    ToolError,
    ToolOutcomeUnknownError,
    ToolTimeoutError,
    TransientToolError,
)

from .mcp_session import Stderr, all_tools, describe, first_cause, open_session, run_sync

if TYPE_CHECKING:
    from .mcp import McpServer

# Our own bound on a call, past the tool's ``timeout_s``: ``execute_tool`` gives up waiting
# at ``timeout_s``, and this frees the abandoned thread (and its session) shortly after.
GRACE_S = 1.0
GONE = object()  # the re-listing no longer has the tool
# The SDK's "session terminated" (sic, positive): an HTTP 404 for our session id.
SESSION_GONE = 32600
# JSON-RPC errors that mean the session or the server failed, not that the call was refused.
_PROTOCOL_FAILURES = {mcp_types.CONNECTION_CLOSED, mcp_types.INTERNAL_ERROR,
                      httpx.codes.REQUEST_TIMEOUT, SESSION_GONE}


@dataclass
class _Exchange:
    """What happened in one session: how far it got, and what the server answered."""

    sent: bool = False  # the tools/call request was handed to the transport
    result: mcp_types.CallToolResult | None = None
    rejection: McpError | None = None  # a JSON-RPC error answering the call
    current: Any = None  # the tool as listed again after a failure: Tool, GONE or None
    stderr: Stderr = field(default_factory=Stderr)


class McpCall:
    """``fn(ctx, args)`` of one MCP tool: calls it on its server, once."""

    def __init__(self, server: McpServer, definition: mcp_types.Tool, *, side_effect: bool,
                 on_stale: Callable[[], None] = lambda: None) -> None:
        self.server = server
        self.definition = definition
        self.side_effect = side_effect
        self.on_stale = on_stale  # the tool changed on the server: drop the cached listing

    def __repr__(self) -> str:
        return f"McpCall({self.server.name!r}, {self.definition.name!r})"

    def __call__(self, ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        exchange = _Exchange()
        limit = self.server.timeout_s + GRACE_S
        try:
            run_sync(lambda: self._exchange(args, ctx.idempotency_key, exchange, limit))
        except Exception as exc:
            raise self._failure(exc, exchange, limit) from exc
        if exchange.rejection is not None:
            raise ToolError(self._rejected(exchange, describe(exchange.rejection)))
        assert exchange.result is not None
        if exchange.result.isError:
            raise ToolError(self._rejected(exchange, _text(exchange.result) or "no detail"))
        return self._json(exchange.result)

    async def _exchange(self, args: dict[str, Any], key: str, exchange: _Exchange,
                        limit: float) -> None:
        name = self.definition.name
        request = mcp_types.ClientRequest(mcp_types.CallToolRequest(
            params=mcp_types.CallToolRequestParams(
                name=name, arguments=args, _meta={"idempotency_key": key})))
        with anyio.fail_after(limit):
            async with open_session(self.server, limit, exchange.stderr) as session:
                exchange.sent = True
                try:
                    # not session.call_tool: with a new session it lists the tools again
                    # before every call to check the output (we check it ourselves)
                    exchange.result = await session.send_request(request,
                                                                 mcp_types.CallToolResult)
                except McpError as exc:
                    if exc.error.code in _PROTOCOL_FAILURES:
                        raise
                    exchange.rejection = exc
                if exchange.rejection is not None or (
                        exchange.result is not None and exchange.result.isError):
                    exchange.current = await self._listed_now(session)

    async def _listed_now(self, session: ClientSession) -> Any:
        """The tool as the server lists it now (GONE if it does not); None if unknown."""
        try:
            with anyio.fail_after(self.server.list_timeout_s):
                listed = {tool.name: tool for tool in await all_tools(session)}
        except Exception:  # the call's own error is the news; this was only a check
            return None
        return listed.get(self.definition.name, GONE)

    def _rejected(self, exchange: _Exchange, said: str) -> str:
        """The message of a refused call, saying so when the tool changed on the server."""
        server, name = self.server, self.definition.name
        who = f"MCP server {server.name!r}"
        if exchange.current is GONE or (
            isinstance(exchange.current, mcp_types.Tool)
            and exchange.current.inputSchema != self.definition.inputSchema
        ):
            self.on_stale()
            if exchange.current is GONE:
                change = f"no longer offers the tool {name!r}"
            else:
                expects = json.dumps(exchange.current.inputSchema, sort_keys=True)[:300]
                change = f"changed the arguments of {name!r}; it now expects {expects}"
            return (f"{who} {change} (since the agent's tools were listed); the call was "
                    f"refused: {said}")
        return f"{name} failed on {who}: {said}"

    def _failure(self, exc: Exception, exchange: _Exchange, limit: float) -> ToolError:
        """The ToolError subclass that tells ``execute_tool`` what to do next."""
        cause = first_cause(exc)
        server, name = self.server, self.definition.name
        at = f"MCP server {server.name!r} ({server.where})"
        detail = describe(cause)
        if exchange.stderr.tail:
            detail += f"; its stderr ended with: {exchange.stderr.tail}"
        unknown = self.side_effect and exchange.sent
        code = cause.error.code if isinstance(cause, McpError) else None
        if isinstance(cause, TimeoutError):
            if unknown:
                return ToolOutcomeUnknownError(
                    f"{name} on {at} did not answer within {limit:g}s; its outcome is unknown "
                    "(it may have taken effect), so it was not retried")
            return ToolTimeoutError(f"{name} on {at} did not answer within {limit:g}s")
        if isinstance(cause, httpx.HTTPStatusError):
            status = cause.response.status_code
            if status >= 500 or status in (408, 429):
                return TransientToolError(f"{name}: {at} answered {detail}")
            return ToolError(f"{name}: {at} refused the request: {detail}")
        if isinstance(cause, FileNotFoundError | PermissionError):
            return ToolError(f"{name}: {at} cannot be started: {detail}")
        if code == mcp_types.INTERNAL_ERROR:  # the server says it failed: its 500
            return TransientToolError(f"{name}: {at} failed: {detail}")
        if code == SESSION_GONE:
            if exchange.sent:  # the server forgot our session (a restart): nothing was run
                return TransientToolError(f"{name}: {at} dropped the session: {detail}")
            return ToolError(f"{name}: {at} does not serve MCP at this URL (HTTP 404)")
        if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | ConnectionRefusedError):
            return TransientToolError(f"{name}: {at} is unreachable: {detail}")
        lost = isinstance(cause, httpx.TransportError | OSError) or (
            code == mcp_types.CONNECTION_CLOSED)
        if unknown:
            what = "the connection was lost" if lost else "it failed"
            return ToolOutcomeUnknownError(
                f"{name} on {at}: {what} after the call was sent ({detail}); its outcome is "
                "unknown, so it was not retried")
        if lost:
            return TransientToolError(f"{name}: {at} is unreachable: {detail}")
        return ToolError(f"{name} on {at} failed: {detail}")

    def _json(self, result: mcp_types.CallToolResult) -> dict[str, Any]:
        """The result as the JSON object the ledger and the model get."""
        if result.structuredContent is not None:
            schema = self.definition.outputSchema
            if schema is not None:
                try:
                    jsonschema.validate(result.structuredContent, schema)
                except jsonschema.ValidationError as exc:
                    raise ToolError(f"{self.definition.name} returned a result that does not "
                                    f"match its output schema: {exc.message}") from None
                except jsonschema.SchemaError:
                    pass  # the server's output schema is broken, not its answer
            return dict(result.structuredContent)
        return {"content": [_block_text(block) for block in result.content]}




def _text(result: mcp_types.CallToolResult) -> str:
    return " ".join(_block_text(block) for block in result.content).strip()


def _block_text(block: mcp_types.ContentBlock) -> str:
    """A content block as text: its text, or a note saying what was not shown."""
    if isinstance(block, mcp_types.TextContent):
        return block.text
    if isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
        size = len(block.data.rstrip("=")) * 3 // 4  # base64: 4 characters per 3 bytes
        return f"[{block.type} ({block.mimeType}, {size} bytes) not shown]"
    if isinstance(block, mcp_types.ResourceLink):
        return f"[link to resource {block.uri} ({block.name})]"
    if isinstance(block, mcp_types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, mcp_types.TextResourceContents):
            return resource.text
        return f"[binary resource {resource.uri} ({resource.mimeType or 'unknown type'}) not shown]"
    return f"[{getattr(block, 'type', type(block).__name__)} content not shown]"


