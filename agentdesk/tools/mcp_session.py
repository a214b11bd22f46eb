"""Reaching an MCP server: one short session over streamable HTTP or stdio, run from sync code.

The SDK is async and our tools are called from a worker's tool thread (``execute_tool``), so
each listing or call runs its own event loop with ``asyncio.run`` in that thread and opens
one session for it: connect, ``initialize``, the request(s), close. A session per call
costs about 15 ms over HTTP to a local server (three round trips more than a kept
connection would) and a process start over stdio (0.4-0.5 s for a Python server): see
``test_per_call_latency`` in tests/mcp. Against a model call of a second or more that is
a fair price for keeping nothing between calls: a server restart, a forked worker or a
tool thread abandoned after its timeout never leaves a half-broken connection behind.

The SDK reports failures from its background tasks as exception groups; ``leaves`` flattens
them so the callers can name what actually went wrong.
"""

from __future__ import annotations

import asyncio
import functools
import shlex
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, TypeVar

import httpx
from mcp import ClientSession, McpError
from mcp import types as mcp_types
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

if TYPE_CHECKING:
    from .mcp import McpServer

T = TypeVar("T")
CLIENT_INFO = mcp_types.Implementation(name="agentdesk", version="1")
STDERR_TAIL = 500  # characters of a stdio server's stderr quoted in an error


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine ``make()`` to completion from sync code.

    A tool thread has no event loop, so ``asyncio.run`` is all it takes. Called from async
    code (an async view), a nested loop is not allowed in that thread: the work goes to a
    helper thread instead (the caller still waits, as it asked for a sync answer).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_awaited(make))
    with ThreadPoolExecutor(1, thread_name_prefix="agentdesk-mcp") as pool:
        return pool.submit(lambda: asyncio.run(_awaited(make))).result()


async def _awaited(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every session: building one costs ~18 ms, most of an httpx
    client's construction, and would otherwise be paid on every call."""
    return ssl.create_default_context()


@dataclass
class Stderr:
    """A stdio server's stderr, kept so that a server that dies says why in our error."""

    file: IO[str] | None = None
    tail: str = field(default="")


@asynccontextmanager
async def open_session(
    server: McpServer, timeout_s: float, stderr: Stderr | None = None
) -> AsyncIterator[ClientSession]:
    """An initialised session with ``server``; closed (HTTP: its session deleted, stdio:
    the process ended) when the block exits."""
    if server.url:
        client = httpx.AsyncClient(
            headers=dict(server.headers), timeout=httpx.Timeout(timeout_s), verify=_tls())
        async with (client, streamable_http_client(server.url, http_client=client) as streams,
                    ClientSession(streams[0], streams[1], client_info=CLIENT_INFO) as session):
            await session.initialize()
            yield session
        return
    params = StdioServerParameters(command=server.command[0], args=list(server.command[1:]),
                                   env=dict(server.env) or None)
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog:
        if stderr is not None:
            stderr.file = errlog
        try:
            async with (stdio_client(params, errlog=errlog) as (read, write),
                        ClientSession(read, write, client_info=CLIENT_INFO) as session):
                await session.initialize()
                yield session
        finally:
            if stderr is not None:
                errlog.seek(0)
                stderr.tail = errlog.read()[-STDERR_TAIL:].strip()
                stderr.file = None


async def all_tools(session: ClientSession) -> list[mcp_types.Tool]:
    """Every tool the server lists, following its pages."""
    found: list[mcp_types.Tool] = []
    cursor: str | None = None
    while True:
        params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        found.extend(page.tools)
        cursor = page.nextCursor
        if not cursor:
            return found


def where(server: McpServer) -> str:
    """The server's address as an operator would recognise it: its URL or its command."""
    return server.url or shlex.join(server.command)


def leaves(exc: BaseException) -> list[BaseException]:
    """The real exceptions inside (nested) exception groups, in order."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def describe(exc: BaseException) -> str:
    """One line saying what a transport failure was, for a person."""
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        return f"HTTP {response.status_code} {response.reason_phrase}".strip()
    if isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
        return f"connection refused or unreachable ({exc or type(exc).__name__})"
    if isinstance(exc, FileNotFoundError):
        return f"the command was not found ({exc.filename or exc})"
    if isinstance(exc, McpError):
        return f"MCP error {exc.error.code}: {exc.error.message}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def first_cause(exc: BaseException) -> BaseException:
    """The most telling leaf of a failure: a timeout, an HTTP status or a transport error
    over the cancellations and secondary errors the SDK's task groups add."""
    found = leaves(exc)
    for kinds in ((TimeoutError,), (httpx.HTTPStatusError,), (httpx.TransportError, OSError),
                  (McpError,)):
        for leaf in found:
            if isinstance(leaf, kinds):
                return leaf
    return found[0]
