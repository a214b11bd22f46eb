"""An MCP server that is down, in trouble, slow, or changed under a running agent: each is
a named failure of the right kind, never an invented result."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from agentdesk.runtime.tools import ToolContext, execute_tool
from agentdesk.tools.mcp import McpServer, build_tool, list_tools

from .conftest import SERVER, free_port

CTX = ToolContext(run_id="run-9", idempotency_key="run-9:2")


def definition(server: McpServer, name: str) -> dict:
    """A tool as the live server lists it (JSON, as an admin row would keep it)."""
    [tool] = [t for t in list_tools(server).tools if t.name == name]
    return {"name": name, "description": tool.description, "inputSchema": tool.args_schema,
            "annotations": {"readOnlyHint": not tool.side_effect}}


def test_a_server_that_is_down_is_retried_then_its_breaker_opens(http, breaker, sleeps):
    down = McpServer("test-http", url=f"http://127.0.0.1:{free_port()}/mcp")
    tool = build_tool(down, definition(http, "lookup_city"))

    outcome = execute_tool(tool, CTX, {"name": "Paris"}, breaker=breaker, sleep=sleeps.append)

    assert outcome.error.startswith("lookup_city: MCP server 'test-http' (http://127.0.0.1:")
    assert "is unreachable: connection refused" in outcome.error
    assert outcome.attempts == 3 and len(sleeps) == 2  # transient: retried with backoff
    assert breaker.states()["lookup_city"]["state"] == "open"  # 3 failures in a row

    refused = execute_tool(tool, CTX, {"name": "Paris"}, breaker=breaker, sleep=sleeps.append)
    assert refused.breaker_open and refused.attempts == 0
    assert "circuit open for lookup_city" in refused.error


def test_a_server_answering_5xx_is_transient(http, http_url, breaker, sleeps, witness):
    troubled = McpServer("test-http", url=http_url.replace("/mcp", "/unavailable"))
    tool = build_tool(troubled, definition(http, "create_ticket"))

    outcome = execute_tool(tool, CTX, {"title": "x"}, breaker=breaker, sleep=sleeps.append)

    assert outcome.error == ("create_ticket: MCP server 'test-http' "
                             f"({troubled.url}) answered HTTP 503 Service Unavailable")
    assert outcome.attempts == 3 and not outcome.outcome_unknown
    assert witness() == []


def test_a_stdio_server_that_cannot_start_is_transient_and_says_why(http, sleeps):
    dies = McpServer("dies", command=(sys.executable, "-c", "import sys; sys.exit('no DB')"))
    tool = build_tool(dies, definition(http, "lookup_city"))

    outcome = execute_tool(tool, CTX, {"name": "Paris"}, sleep=sleeps.append)

    assert "is unreachable: MCP error -32000: Connection closed" in outcome.error
    assert outcome.error.endswith("its stderr ended with: no DB")
    assert outcome.attempts == 3


def test_a_slow_read_only_call_times_out_and_is_retried(http, sleeps):
    slow = McpServer("test-http", url=http.url, timeout_s=0.4)
    tool = [t for t in list_tools(slow).tools if t.name == "wait"][0]

    started = time.monotonic()
    outcome = execute_tool(tool, CTX, {"seconds": 3}, sleep=sleeps.append)

    assert outcome.error == "wait timed out after 0.4s"
    assert outcome.attempts == 3 and not outcome.outcome_unknown
    assert time.monotonic() - started < 2.5  # three bounded attempts, not three long waits


def test_a_slow_side_effect_has_an_unknown_outcome_and_is_not_repeated(http, witness, sleeps):
    slow = McpServer("test-http", url=http.url, timeout_s=0.4)
    tool = [t for t in list_tools(slow).tools if t.name == "create_ticket"][0]

    outcome = execute_tool(tool, CTX, {"title": "slow", "delay_s": 2}, sleep=sleeps.append)

    assert outcome.outcome_unknown and outcome.attempts == 1 and sleeps == []
    assert "its outcome is unknown" in outcome.error
    assert witness() == [("run-9:2", "slow")]  # it did happen: a human must check, not retry


@pytest.fixture
def upgradable(tmp_path: Path, keys_file: Path) -> tuple[McpServer, Path]:
    """A stdio server whose next start serves the schema the file names (v1, then v2)."""
    schema = tmp_path / "schema"
    schema.write_text("v1")
    server = McpServer("weather", command=(sys.executable, str(SERVER), "--stdio"),
                       env={"MCP_TEST_KEYS": str(keys_file), "MCP_TEST_SCHEMA_FILE": str(schema)},
                       list_timeout_s=10)
    return server, schema


def test_a_schema_changed_mid_run_is_a_clear_error(upgradable, sleeps):
    server, schema = upgradable
    listing = list_tools(server)
    tool = [t for t in listing.tools if t.name == "get_weather"][0]
    assert execute_tool(tool, CTX, {"city": "Paris"}).ok

    schema.write_text("v2")  # the server is upgraded while the run goes on
    outcome = execute_tool(tool, CTX, {"city": "Paris"}, sleep=sleeps.append)

    assert outcome.error.startswith("MCP server 'weather' changed the arguments of "
                                    "'get_weather'; it now expects {")
    assert '"required": ["location"]' in outcome.error
    assert "(since the agent's tools were listed); the call was refused: " in outcome.error
    assert outcome.attempts == 1 and sleeps == []  # permanent: retrying cannot help
    # the stale listing was dropped: the next one has the new schema
    relisted = [t for t in list_tools(server).tools if t.name == "get_weather"][0]
    assert relisted is not tool and relisted.args_schema["required"] == ["location"]
