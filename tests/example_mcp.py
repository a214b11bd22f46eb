"""The README's example MCP server (``agentdesk.examples.mcp_server``) in a subprocess, as a
user starts it: for the integration and browser tests of agents defined in admin."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def example_mcp_server(data_dir: Path) -> Iterator[str]:
    """Its streamable HTTP endpoint, once it answers; tickets go to ``data_dir``."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "agentdesk.examples.mcp_server", "--port", str(port)],
        env={**os.environ, "AGENTDESK_DATA_DIR": str(data_dir)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                httpx.get(url, timeout=0.5)
                break
            except httpx.TransportError:
                assert process.poll() is None, "the example MCP server exited"
                assert time.monotonic() < deadline, "the example MCP server did not start"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
