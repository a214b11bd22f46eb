"""Listing an MCP server's tools: what each becomes, what is left out and why, the cache,
and a server that cannot be listed."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentdesk.tools.mcp import (
    LISTING_TTL_S,
    McpServer,
    McpToolsError,
    McpUnavailable,
    clear_cache,
    list_tools,
    mcp_tools,
)

from .conftest import free_port


def test_each_listed_tool_becomes_a_tool_side_effecting_unless_marked_read_only(http):
    listing = list_tools(http)

    tools = {tool.name: tool for tool in listing.tools}
    assert set(tools) == {"lookup_city", "describe_city", "create_ticket", "always_fails",
                          "wait", "get_weather"}
    assert listing.problems == ()
    assert tools["create_ticket"].side_effect is True  # no readOnlyHint: assume the worse
    assert [name for name, tool in tools.items() if not tool.side_effect] == [
        "lookup_city", "describe_city", "always_fails", "wait", "get_weather"]
    lookup = tools["lookup_city"]
    assert lookup.description == "Facts about a city, by name."
    assert lookup.args_schema["required"] == ["name"]  # the server's inputSchema, as is
    assert lookup.timeout_s == 5
    # what the model is offered: the server's schema plus the runtime's confidence field
    function = lookup.openai_schema()["function"]
    assert function["parameters"]["properties"]["name"] == {"title": "Name", "type": "string"}
    assert "confidence" in function["parameters"]["required"]


def test_a_tool_with_a_malformed_schema_is_skipped_and_reported(stdio):
    broken = McpServer(stdio.name, command=stdio.command,
                       env={**stdio.env, "MCP_TEST_MALFORMED": "1"}, list_timeout_s=10)

    listing = list_tools(broken)

    assert "broken" not in {tool.name for tool in listing.tools}
    assert "lookup_city" in {tool.name for tool in listing.tools}  # the others still work
    [problem] = listing.problems
    assert problem.startswith("MCP server 'test-stdio' (")
    assert "tool 'broken' skipped: its input schema is not a valid JSON schema" in problem
    assert "'strng'" in problem
    with pytest.raises(McpToolsError, match="no usable tool named 'broken'.*not a valid JSON"):
        listing.registry(only=["broken"])


def test_listings_are_cached_per_server_until_cleared(http):
    first = list_tools(http)

    assert list_tools(http) is first  # within LISTING_TTL_S: no second round trip
    assert LISTING_TTL_S == 60
    again = list_tools(http, fresh=True)
    assert again is not first
    # an unchanged tool is the same object: the runtime caches validators by identity
    assert again.tools == first.tools
    clear_cache(http)
    assert list_tools(http) is not again
    slower = McpServer(http.name, url=http.url, timeout_s=9)  # another configuration
    assert list_tools(slower).tools[0].timeout_s == 9


def test_mcp_tools_gives_a_registry_of_the_chosen_tools(http):
    registry = mcp_tools(http, only=["lookup_city", "create_ticket"])

    assert list(registry.tools) == ["lookup_city", "create_ticket"]
    with pytest.raises(McpToolsError, match=r"no usable tool named 'delete_all'.*it offers"):
        mcp_tools(http, only=["delete_all"])
    prefixed = McpServer("cities", url=http.url, tool_prefix="cities_")
    assert list(mcp_tools(prefixed, only=["lookup_city"]).tools) == ["cities_lookup_city"]


def test_a_server_that_is_down_is_unavailable_naming_it():
    down = McpServer("tickets", url=f"http://127.0.0.1:{free_port()}/mcp")
    with pytest.raises(McpUnavailable, match=r"^MCP server 'tickets' \(http://127\.0\.0\.1:"
                                             r"\d+/mcp\) is unavailable: connection refused"):
        list_tools(down)

    missing = McpServer("files", command=("/nonexistent/files-mcp", "--root", "/srv"))
    with pytest.raises(McpUnavailable, match=r"'files' \(/nonexistent/files-mcp --root /srv\) "
                                             r"is unavailable: the command was not found"):
        list_tools(missing)


def test_a_stdio_server_that_dies_says_why(tmp_path: Path):
    dies = McpServer("dies", command=(sys.executable, "-c",
                                      "import sys; sys.exit('missing FILES_ROOT')"))
    with pytest.raises(McpUnavailable, match="stderr ended with: missing FILES_ROOT"):
        list_tools(dies)


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A port that accepts connections and never answers (a hung server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"


def test_a_server_slower_than_list_timeout_is_unavailable(silent_url):
    hung = McpServer("hung", url=silent_url, list_timeout_s=0.3)
    with pytest.raises(McpUnavailable, match=r"is unavailable: no answer within 0\.3s"):
        list_tools(hung)


def test_a_server_config_takes_exactly_one_transport_and_hides_its_secrets():
    with pytest.raises(ValueError, match="exactly one of url"):
        McpServer("x")
    with pytest.raises(ValueError, match="exactly one of url"):
        McpServer("x", url="http://a/mcp", command=("a",))
    with pytest.raises(ValueError, match="headers are for an HTTP url"):
        McpServer("x", command=("a",), headers={"Authorization": "Bearer s3cret"})
    server = McpServer("x", url="https://a/mcp", headers={"Authorization": "Bearer s3cret"})
    assert "s3cret" not in repr(server)
    row = {"name": "x", "command": ["npx", "files"], "env": {"ROOT": "/srv"}}  # a JSON row
    assert McpServer(**row).command == ("npx", "files")
    assert hash(McpServer(**row)) == hash(McpServer(**row))


def test_listing_works_from_async_code_too(http):
    """An async caller (an async view) has a running loop: the work moves to a thread."""

    async def from_a_view() -> int:
        return len(list_tools(http).tools)

    assert asyncio.run(from_a_view()) == 6
