"""Fixtures for the simulator tests: a live llmsim server and real ``openai`` clients.

Nothing here touches Django; the simulator is a standalone HTTP service.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import OpenAI

from agentdesk.llmsim import SimServer, start_in_thread

STALL_S = 5.0
"""How long ``timeout`` faults stall on the shared server: far above the tests' client timeouts."""


@pytest.fixture(scope="session")
def sim() -> Iterator[SimServer]:
    """An instant simulator shared by the session (tests use distinct conversations)."""
    server = start_in_thread(port=0, latency_scale=0, fault_timeout_s=STALL_S)
    yield server
    server.stop()


@pytest.fixture
def client(sim: SimServer) -> OpenAI:
    """A client that does not retry, so each test sees exactly the responses it provokes."""
    return OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0, timeout=10)
