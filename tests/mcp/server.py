"""A real MCP server for the tests, built with the SDK's FastMCP (never a mock of the protocol).

Run it over streamable HTTP (``python server.py --port N``, endpoint ``/mcp``) or over
stdio (``python server.py --stdio``). Its tools:

- ``lookup_city(name)``: read-only (``readOnlyHint``), structured result;
- ``create_ticket(title, delay_s=0)``: a side effect: appends the idempotency key it
  received in the request's ``_meta`` to the file named by ``MCP_TEST_KEYS`` (the outside
  witness a test reads), then sleeps ``delay_s`` (so a timed-out call has still happened);
- ``always_fails(reason)``: read-only, always answers with ``isError``;
- ``wait(seconds)``: read-only and slow;
- ``describe_city(name)``: read-only, a text and an image block, no structured result;
- ``get_weather``: takes ``city``, or ``location`` when the file named by
  ``MCP_TEST_SCHEMA_FILE`` says ``v2`` (read at start: a server upgraded between the
  listing and the call, as a stdio server is on its next start).

``MCP_TEST_MALFORMED=1`` adds ``broken`` to the listing, with an input schema that is not a
valid JSON schema (FastMCP always derives valid ones, so the listing is post-processed).
Over HTTP, ``/unavailable`` answers every request with 503 (a backend in trouble).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import anyio
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import ImageContent, TextContent, ToolAnnotations
from mcp.types import Tool as McpTool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

READ_ONLY = ToolAnnotations(readOnlyHint=True)
PIXEL = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
         "AAAABJRU5ErkJggg==")  # a 1x1 PNG
CITIES = {"paris": {"name": "Paris", "country": "FR", "population": 2_102_650},
          "lyon": {"name": "Lyon", "country": "FR", "population": 522_250}}


class TestServer(FastMCP):
    async def list_tools(self) -> list[McpTool]:
        tools = await super().list_tools()
        if os.environ.get("MCP_TEST_MALFORMED") == "1":
            tools.append(McpTool(name="broken", description="Its schema is not a schema.",
                                 inputSchema={"type": "object",
                                              "properties": {"x": {"type": "strng"}}}))
        return tools


def build(port: int = 8000) -> FastMCP:
    server = TestServer("agentdesk-test", host="127.0.0.1", port=port, log_level="WARNING")

    @server.tool(annotations=READ_ONLY)
    def lookup_city(name: str) -> dict[str, Any]:
        """Facts about a city, by name."""
        city = CITIES.get(name.lower())
        if city is None:
            raise ToolError(f"no city named {name!r}")
        return city

    @server.tool(structured_output=False, annotations=READ_ONLY)
    def describe_city(name: str) -> list[TextContent | ImageContent]:
        """A sentence and a picture (content blocks, no structured result)."""
        return [TextContent(type="text", text=f"{name} is lovely in spring."),
                ImageContent(type="image", mimeType="image/png", data=PIXEL)]

    @server.tool()
    async def create_ticket(title: str, ctx: Context, delay_s: float = 0.0) -> dict[str, Any]:
        """Open a support ticket (a side effect)."""
        meta = ctx.request_context.meta
        key = (meta.model_extra or {}).get("idempotency_key") if meta is not None else None
        with Path(os.environ["MCP_TEST_KEYS"]).open("a") as witness:
            witness.write(f"{key}\t{title}\n")
        await anyio.sleep(delay_s)  # async: a slow call must not stall the server's other calls
        return {"ticket": f"T-{len(title)}", "title": title, "idempotency_key": key}

    @server.tool(annotations=READ_ONLY)
    def always_fails(reason: str = "") -> str:
        """Fails every time, as a backend refusing a request does."""
        raise ToolError(f"the backend refused: {reason or 'no reason given'}")

    @server.tool(annotations=READ_ONLY)
    async def wait(seconds: float) -> dict[str, Any]:
        """Answers after ``seconds``."""
        await anyio.sleep(seconds)
        return {"waited": seconds}

    schema_file = os.environ.get("MCP_TEST_SCHEMA_FILE")
    if schema_file and Path(schema_file).read_text().strip() == "v2":
        @server.tool(name="get_weather", annotations=READ_ONLY)
        def get_weather_v2(location: str) -> dict[str, Any]:
            """The weather at a location."""
            return {"location": location, "sky": "clear"}
    else:
        @server.tool(annotations=READ_ONLY)
        def get_weather(city: str) -> dict[str, Any]:
            """The weather in a city."""
            return {"city": city, "sky": "clear"}

    @server.custom_route("/unavailable", methods=["GET", "POST", "DELETE"])
    async def unavailable(request: Request) -> Response:
        return PlainTextResponse("down for maintenance", status_code=503)

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stdio", action="store_true")
    parser.add_argument("--port", type=int, default=8000)
    options = parser.parse_args()
    server = build(options.port)
    server.run("stdio" if options.stdio else "streamable-http")


if __name__ == "__main__":
    main()
