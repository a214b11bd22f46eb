"""MCP servers configured in admin: their config, their kept tool listing, its refresh.

A row becomes an ``agentdesk.tools.mcp.McpServer`` with its secrets read from the
environment by name at that moment. The tools a run is offered come from the listing kept
on the row (``McpServer.listing``): listed when an admin saves the server, refreshed by a
worker when it is older than ``REFRESH_AFTER``. A server that is down at refresh time
keeps its last listing, so its tools are still offered and a call fails as an ordinary
tool failure (retried, counted by the breaker, escalated) — never a lost run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import structlog
from django.utils import timezone

from agentdesk.runtime.tools import Tool
from agentdesk.tools import mcp

from .models import McpServer

log = structlog.get_logger(__name__)
REFRESH_AFTER = timedelta(seconds=mcp.LISTING_TTL_S)


class Unavailable(Exception):
    """The server could not be listed; the message says why and where."""


def config_of(row: McpServer) -> mcp.McpServer:
    """The row as the MCP client's config, secrets resolved (Unavailable if one is unset)."""
    try:
        return mcp.McpServer(
            name=row.name,
            url=row.url if row.transport == McpServer.Transport.HTTP else "",
            command=tuple(row.argv) if row.transport == McpServer.Transport.STDIO else (),
            headers=_resolved(row.header_env, "header"),
            env=_resolved(row.env, "environment variable"),
            timeout_s=row.timeout_s,
            list_timeout_s=min(row.timeout_s, 10.0),
        )
    except ValueError as exc:
        raise Unavailable(str(exc)) from None


def _resolved(names: dict[str, str] | None, what: str) -> dict[str, str]:
    """Secrets are read here, by name, and held only in the config's (unprinted) fields."""
    values = {}
    for key, env_name in (names or {}).items():
        value = os.environ.get(env_name)
        if value is None:
            raise Unavailable(f"{what} {key} needs the environment variable {env_name}, "
                              "which is not set")
        values[key] = value
    return values


def problems(row: McpServer, *, allowed_commands: Sequence[str]) -> dict[str, list[str]]:
    """Why a row cannot be saved as it is, by field."""
    found: dict[str, list[str]] = {}
    if row.transport == McpServer.Transport.HTTP:
        if not row.url:
            found["url"] = ["A streamable HTTP server needs its URL."]
        if row.command:
            found["command"] = ["Leave the command empty for an HTTP server."]
        if row.env:
            found["env"] = ["Environment variables are for stdio servers."]
    else:
        argv = row.argv
        if not argv:
            found["command"] = ["A stdio server needs the command that starts it."]
        elif argv[0] not in allowed_commands:
            allowed = ", ".join(allowed_commands) or "none"
            found["command"] = [f"{argv[0]!r} may not be started by workers: list it in "
                                f"AGENTDESK_MCP_STDIO_COMMANDS (allowed now: {allowed})."]
        if row.url:
            found["url"] = ["Leave the URL empty for a stdio server."]
        if row.header_env:
            found["header_env"] = ["Headers are for HTTP servers."]
    return found


def list_now(row: McpServer) -> list[dict[str, Any]]:
    """Connect and list the server's tools now, as JSON definitions to keep on the row.
    Tools the runtime cannot offer (bad name, bad schema) are left out and logged."""
    try:
        listing = mcp.list_tools(config_of(row), fresh=True)
    except mcp.McpToolsError as exc:
        raise Unavailable(str(exc)) from None
    for problem in listing.problems:
        log.warning("mcp tool skipped", server=row.name, problem=problem)
    return [tool.fn.definition.model_dump(mode="json", by_alias=True, exclude_none=True)
            for tool in listing.tools]


def keep_listing(row: McpServer, listing: list[dict[str, Any]]) -> None:
    row.listing, row.listed_at = listing, timezone.now()


def refresh_if_stale(row: McpServer) -> None:
    """Re-list a server whose listing is older than REFRESH_AFTER (a worker, before a run
    slice); when it cannot be reached, keep the old listing and say so in the log."""
    if row.listed_at is not None and timezone.now() - row.listed_at < REFRESH_AFTER:
        return
    try:
        listing = list_now(row)
    except Unavailable as exc:
        log.warning("mcp server unavailable; keeping its last listing", server=row.name,
                    error=str(exc))
        return
    keep_listing(row, listing)
    McpServer.objects.filter(pk=row.pk).update(listing=row.listing, listed_at=row.listed_at)


def tools_of(row: McpServer) -> list[Tool]:
    """The server's tools from its kept listing (no network). A server whose secrets are
    unset offers nothing: its tools could only fail."""
    try:
        config = config_of(row)
    except Unavailable as exc:
        log.warning("mcp server not configured on this worker", server=row.name,
                    error=str(exc))
        return []
    tools = []
    for definition in row.listing or ():
        try:
            tools.append(mcp.build_tool(config, definition))
        except (mcp.McpToolsError, ValueError) as exc:
            log.warning("mcp tool skipped", server=row.name, error=str(exc))
    return tools


def read_only(definition: dict[str, Any]) -> bool:
    return bool((definition.get("annotations") or {}).get("readOnlyHint"))
