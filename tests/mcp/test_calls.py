"""Calling MCP tools through ``execute_tool``, as the engine does: results, argument
validation before the server, the idempotency key, and a tool that fails."""

from __future__ import annotations

import statistics
import time

import pytest

from agentdesk.runtime.tools import ToolContext, execute_tool
from agentdesk.tools.mcp import build_tool, list_tools

CTX = ToolContext(run_id="run-7", idempotency_key="run-7:4")


def tool_of(server, name):
    [tool] = [t for t in list_tools(server).tools if t.name == name]
    return tool


@pytest.fixture(params=["http", "stdio"])
def server(request):
    return request.getfixturevalue(request.param)


def test_a_read_only_call_returns_the_structured_result(server, breaker):
    outcome = execute_tool(tool_of(server, "lookup_city"), CTX, {"name": "Paris"},
                           breaker=breaker)

    assert outcome.ok, outcome.error
    assert outcome.result == {"name": "Paris", "country": "FR", "population": 2_102_650}
    assert outcome.attempts == 1


def test_the_idempotency_key_reaches_the_server(server, witness):
    outcome = execute_tool(tool_of(server, "create_ticket"), CTX, {"title": "Broken screen"})

    assert outcome.ok, outcome.error
    assert outcome.result["idempotency_key"] == "run-7:4"
    assert witness() == [("run-7:4", "Broken screen")]


def test_invalid_arguments_never_reach_the_server(http, witness, breaker):
    outcome = execute_tool(tool_of(http, "create_ticket"), CTX, {"title": 42}, breaker=breaker)

    assert outcome.error == "invalid arguments for create_ticket: title: 42 is not of type 'string'"
    assert outcome.attempts == 0
    assert witness() == []


def test_an_error_result_is_a_failed_outcome_with_the_servers_words(http, breaker, sleeps):
    outcome = execute_tool(tool_of(http, "always_fails"), CTX, {"reason": "quota exceeded"},
                           breaker=breaker, sleep=sleeps.append)

    assert not outcome.ok and outcome.result is None
    assert outcome.error == ("always_fails failed on MCP server 'test-http': Error executing "
                             "tool always_fails: the backend refused: quota exceeded")
    assert outcome.attempts == 1 and sleeps == []  # permanent: not retried
    assert breaker.states() == {}  # the backend answered: its breaker stays closed


def test_content_blocks_become_texts_and_notes(http):
    outcome = execute_tool(tool_of(http, "describe_city"), CTX, {"name": "Lyon"})

    assert outcome.result == {"content": ["Lyon is lovely in spring.",
                                          "[image (image/png, 70 bytes) not shown]"]}


def test_a_tool_the_server_no_longer_has_is_a_clear_error(http, breaker):
    gone = build_tool(http, {"name": "vanished", "inputSchema": {"type": "object"},
                             "annotations": {"readOnlyHint": True}})

    outcome = execute_tool(gone, CTX, {}, breaker=breaker)

    assert outcome.error.startswith("MCP server 'test-http' no longer offers the tool "
                                    "'vanished' (since the agent's tools were listed); the "
                                    "call was refused: Unknown tool: vanished")
    assert outcome.attempts == 1


def test_per_call_latency(http, stdio, capsys):
    """Measured, not asserted tightly: a session per call (see mcp_session)."""
    timings = {}
    for server, calls in ((http, 10), (stdio, 3)):
        tool = tool_of(server, "lookup_city")
        took = []
        for _ in range(calls):
            started = time.perf_counter()
            assert execute_tool(tool, CTX, {"name": "Lyon"}).ok
            took.append((time.perf_counter() - started) * 1000)
            time.sleep(0.05)  # the test server tears the last session down in the meantime
        timings[server.name] = statistics.median(took)
    with capsys.disabled():
        print(f"\nMCP per-call latency (median ms): {timings}")
    assert timings["test-http"] < 500
