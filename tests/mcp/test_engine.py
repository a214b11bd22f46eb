"""The real engine with an agent whose tools come from a real MCP server: the read-only
tool runs at once, the side-effecting one waits for approval and, once approved, runs
exactly once, even across a crash right after it ran."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from agentdesk.runtime.agent import AgentSpec
from agentdesk.runtime.breaker import InMemoryBreakerStore
from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.profiles import ModelProfile
from agentdesk.runtime.state import HumanInput, PolicySnapshot, RunState
from agentdesk.tools.mcp import mcp_tools
from tests.runtime.fakes import (
    InMemoryStore,
    ScriptedModel,
    SimulatedCrash,
    decision_reply,
    tool_call_reply,
)

SMALL, LARGE = "sim-small", "sim-large"


@pytest.fixture
def agent(http) -> AgentSpec:
    return AgentSpec(slug="mcp-helpdesk", name="MCP helpdesk",
                     instructions="Answer travellers; open a ticket when asked.",
                     tools=mcp_tools(http, only=["lookup_city", "create_ticket"]))


@pytest.fixture
def policy() -> PolicySnapshot:
    price = {"input_per_mtok": Decimal("0.15"), "cached_input_per_mtok": Decimal("0.075"),
             "output_per_mtok": Decimal("0.60")}
    return PolicySnapshot(
        small_model=SMALL, large_model=LARGE,
        models={name: ModelProfile(name=name, **price) for name in (SMALL, LARGE)},
        approval_tools=["create_ticket"],  # the policy's rule: tickets need an operator
    )


def test_read_only_runs_then_the_side_effect_waits_for_approval_and_runs_once(
    agent, policy, witness
):
    breaker = InMemoryBreakerStore()
    model = ScriptedModel().script(
        tool_call_reply("lookup_city", {"name": "Lyon"}),
        tool_call_reply("create_ticket", {"title": "Trip to Lyon"}, call_id="call_ticket"),
    )
    # a worker that dies right after the ticket was created and recorded in the ledger
    store = InMemoryStore(crash_after_ledger_finish="create_ticket")
    run = RunState(run_id="run-1", agent=agent.slug, input={"message": "Plan my Lyon trip"})

    state = Engine(agent, policy, model, store, breaker=breaker).advance(run)

    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.APPROVAL_REQUIRED
    [lookup] = store.steps_of(StepKind.TOOL)
    assert lookup.name == "lookup_city" and lookup.error == ""
    assert lookup.result == {"name": "Lyon", "country": "FR", "population": 522_250}
    [escalation] = store.escalations
    assert escalation.proposed_tool == "create_ticket"
    assert escalation.proposed_args == {"title": "Trip to Lyon"}
    assert witness() == []  # nothing created before a human said so

    approved = store.last_checkpoint()
    approved.human_input = HumanInput(decision="approve", operator="op")
    with pytest.raises(SimulatedCrash):  # the first resume creates the ticket, then dies
        Engine(agent, policy, model, store, breaker=breaker).advance(approved)
    [(key, title)] = witness()

    model.script(decision_reply("Your ticket for the Lyon trip is open."))
    state = Engine(agent, policy, model, store, breaker=breaker).advance(
        store.last_checkpoint())  # the second resume replays the ledger

    assert state.status == RunStatus.SUCCEEDED
    assert witness() == [(key, "Trip to Lyon")]  # exactly once
    ticket = [s for s in store.steps_of(StepKind.TOOL) if s.name == "create_ticket"][-1]
    assert ticket.args["replayed_from_ledger"] is True
    assert key == f"run-1:{ticket.index}" == ticket.result["idempotency_key"]
    assert store.ledger[key]["status"] == "succeeded"
    assert json.loads(model.last_messages()[-1]["content"]) == {"ok": True,
                                                                "result": ticket.result}
    assert breaker.states() == {}
