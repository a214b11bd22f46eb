"""Fixtures for the runtime's unit tests: the real support-refunds agent, fakes for the rest."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agentdesk.agents import get_agent
from agentdesk.runtime.agent import AgentSpec
from agentdesk.runtime.loop import Engine
from agentdesk.runtime.profiles import ModelProfile
from agentdesk.runtime.state import PolicySnapshot, RunState

from .fakes import FakeClock, InMemoryStore, ScriptedModel

SMALL, LARGE = "sim-small", "sim-large"
PRICES = {
    SMALL: ModelProfile(name=SMALL, input_per_mtok=Decimal("0.15"),
                        cached_input_per_mtok=Decimal("0.075"), output_per_mtok=Decimal("0.60")),
    LARGE: ModelProfile(name=LARGE, input_per_mtok=Decimal("2.50"),
                        cached_input_per_mtok=Decimal("1.25"), output_per_mtok=Decimal("10")),
}


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGENTDESK_DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def journal(data_dir: Path) -> Callable[[], list[dict[str, Any]]]:
    """The refunds issued so far, read from the agent's journal (the outside witness)."""

    def read() -> list[dict[str, Any]]:
        path = data_dir / "refunds.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    return read


@pytest.fixture
def agent(data_dir: Path) -> AgentSpec:
    spec = get_agent("support-refunds")
    assert spec is not None
    return spec


@pytest.fixture
def policy() -> PolicySnapshot:
    return PolicySnapshot(
        small_model=SMALL,
        large_model=LARGE,
        models=dict(PRICES),
        approval_amount_usd=Decimal("100"),
    )


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(
    agent: AgentSpec,
    policy: PolicySnapshot,
    model: ScriptedModel,
    store: InMemoryStore,
    clock: FakeClock,
) -> Engine:
    return Engine(agent, policy, model, store, clock=clock)


def new_run(message: str = "Where is my order 1077?", run_id: str = "run-1") -> RunState:
    return RunState(run_id=run_id, agent="support-refunds", input={"message": message})


@pytest.fixture
def state() -> RunState:
    return new_run()
