"""A real MCP server for the tests: over streamable HTTP in a subprocess (started once per
session, on a free port), and over stdio (a process per session, started by the SDK).

The server appends each idempotency key ``create_ticket`` receives to a witness file,
emptied before every test: what the server saw, read from outside the client under test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from agentdesk.runtime.breaker import InMemoryBreakerStore
from agentdesk.tools.mcp import McpServer, clear_cache

SERVER = Path(__file__).with_name("server.py")
Witness = Callable[[], list[tuple[str, str]]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mcp") / "keys.tsv"
    path.touch()
    return path


@pytest.fixture(scope="session")
def http_url(keys_file: Path) -> Iterator[str]:
    """The HTTP server's MCP endpoint, once it answers."""
    port = free_port()
    log = keys_file.with_name("server.log")  # a file, not a pipe nobody reads: a full pipe
    with log.open("w") as output:            # would stall the server mid-suite
        process = subprocess.Popen(
            [sys.executable, str(SERVER), "--port", str(port)],
            env={**os.environ, "MCP_TEST_KEYS": str(keys_file)},
            stdout=output, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the MCP test server exited: {log.read_text()}")
        try:
            httpx.get(f"{base}/unavailable", timeout=0.5)  # any answer: it is serving
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError("the MCP test server did not start within 20s") from None
            time.sleep(0.05)
    yield f"{base}/mcp"
    process.terminate()  # uvicorn waits for open streams on SIGTERM: do not wait long
    try:
        process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def http(http_url: str) -> McpServer:
    return McpServer("test-http", url=http_url, timeout_s=5)


@pytest.fixture
def stdio(keys_file: Path) -> McpServer:
    return McpServer("test-stdio", command=(sys.executable, str(SERVER), "--stdio"),
                     env={"MCP_TEST_KEYS": str(keys_file)}, timeout_s=10, list_timeout_s=10)


@pytest.fixture(autouse=True)
def fresh_listings() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def witness(keys_file: Path) -> Witness:
    """(idempotency key, title) for each ticket the server created during this test."""
    keys_file.write_text("")

    def read() -> list[tuple[str, str]]:
        lines = keys_file.read_text().splitlines()
        return [(key, title) for key, title in (line.split("\t", 1) for line in lines)]

    return read


@pytest.fixture
def breaker() -> InMemoryBreakerStore:
    return InMemoryBreakerStore(failure_threshold=3, cooldown_s=60)


@pytest.fixture
def sleeps() -> list[float]:
    """The backoff ``execute_tool`` waited between attempts (recorded, not slept)."""
    return []
