"""A side effect that timed out may have happened: a human decides; breakers fail fast."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from agentdesk.runtime.breaker import OPEN, InMemoryBreakerStore
from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.state import HumanInput
from agentdesk.runtime.tools import ToolContext, ToolRegistry, TransientToolError

from .conftest import new_run
from .fakes import InMemoryStore, ScriptedModel, SimulatedCrash, decision_reply, tool_call_reply

CHARGE = {"account": "A-17", "cents": 500}
TIMEOUT_S = 0.1


class ChargeArgs(BaseModel):
    account: str
    cents: int


class Backend:
    """Tool bodies: the first ``hang`` calls hang until released (i.e. past any timeout),
    the rest answer; every call's idempotency key is recorded."""

    def __init__(self, release: threading.Event, hang: int = 0, fail: int = 0) -> None:
        self.release = release
        self.hang = hang
        self.fail = fail
        self.keys: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, ctx: ToolContext, args: BaseModel) -> dict[str, Any]:
        with self._lock:
            self.keys.append(ctx.idempotency_key)
            n = len(self.keys)
        if n <= self.fail:
            raise TransientToolError("payment backend unavailable (HTTP 503)")
        if n <= self.hang:
            self.release.wait(30)
        return {"charge_id": "ch_" + ctx.idempotency_key, **args.model_dump()}


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown so the tool threads left hanging by a timeout finish."""
    event = threading.Event()
    yield event
    event.set()


def _agent_with(agent, backend: Backend, *, side_effect: bool = True, max_attempts: int = 3):
    registry = ToolRegistry()
    registry.tool(args=ChargeArgs, name="charge", side_effect=side_effect,
                  timeout_s=TIMEOUT_S, max_attempts=max_attempts)(backend)
    return dataclasses.replace(agent, tools=registry)


def _resume(agent, policy, model, store, decision, message="", **ports):
    resumed = store.last_checkpoint()
    resumed.human_input = HumanInput(decision=decision, message=message, operator="op")
    return Engine(agent, policy, model, store, **ports).advance(resumed)


# -- a side effect that timed out ----------------------------------------------------------


def test_a_timed_out_side_effect_is_recorded_and_escalated_with_the_call(
    agent, policy, model, store, release
):
    backend = Backend(release, hang=1)
    agent = _agent_with(agent, backend)
    model.script(tool_call_reply("charge", CHARGE, call_id="call_charge"))
    state = Engine(agent, policy, model, store).advance(new_run("Charge A-17 five dollars"))

    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.TOOL_OUTCOME_UNKNOWN
    assert store.kinds() == ["retrieval", "model", "tool", "escalation"]
    tool_step = store.steps[2]
    assert (tool_step.name, tool_step.args, tool_step.result) == ("charge", CHARGE, None)
    assert "timed out" in tool_step.error and "outcome is unknown" in tool_step.error
    assert tool_step.attempts == 1
    assert backend.keys == ["run-1:2"]  # started once, never retried
    [esc] = store.escalations
    assert esc.reason == Reason.TOOL_OUTCOME_UNKNOWN
    assert (esc.proposed_tool, esc.proposed_args) == ("charge", CHARGE)
    assert "approve to run it again" in esc.question
    assert state.pending_call is not None and state.pending_call.call_id == "call_charge"
    # the agent was never told an outcome: no tool message for the call yet
    assert all(m.get("tool_call_id") != "call_charge" for m in state.messages)


def test_approving_runs_it_again_under_a_new_idempotency_key(
    agent, policy, model, store, release
):
    backend = Backend(release, hang=1)
    agent = _agent_with(agent, backend)
    model.script(tool_call_reply("charge", CHARGE, call_id="call_charge"))
    Engine(agent, policy, model, store).advance(new_run("Charge A-17 five dollars"))

    model.script(decision_reply("Charged $5."))
    state = _resume(agent, policy, model, store, "approve")

    assert state.status == RunStatus.SUCCEEDED
    assert len(backend.keys) == 2
    first, second = backend.keys
    assert first != second and second.startswith("run-1:")
    assert set(store.ledger) == {first, second}
    assert store.ledger[second]["status"] == "succeeded"
    charge_steps = [s for s in store.steps_of(StepKind.TOOL) if s.name == "charge"]
    assert [bool(s.error) for s in charge_steps] == [True, False]
    assert charge_steps[1].result["charge_id"] == "ch_" + second
    result_msg = model.calls[-1].messages[-1]
    assert result_msg["tool_call_id"] == "call_charge"
    assert json.loads(result_msg["content"])["result"]["charge_id"] == "ch_" + second


class CrashAtToolStep(InMemoryStore):
    """Dies when the engine goes to commit the step of ``tool``: after the call and any
    ledger write, before its checkpoint."""

    def __init__(self, tool: str) -> None:
        super().__init__()
        self.crash_at = tool

    def commit(self, state, step=None, escalation=None) -> None:
        if step is not None and step.kind == StepKind.TOOL and step.name == self.crash_at:
            self.crash_at = ""
            raise SimulatedCrash(f"before committing the {step.name} step")
        super().commit(state, step, escalation)


def test_a_crash_after_the_timeout_still_escalates_as_unknown_on_resume(
    agent, policy, release
):
    backend = Backend(release, hang=1)
    agent = _agent_with(agent, backend)
    store = CrashAtToolStep("charge")
    model = ScriptedModel().script(tool_call_reply("charge", CHARGE, call_id="call_charge"))
    with pytest.raises(SimulatedCrash):
        Engine(agent, policy, model, store).advance(new_run("Charge A-17 five dollars"))
    assert store.last_checkpoint().pending_call.tool == "charge"

    # a fresh worker resumes: it must neither repeat the charge nor call it a plain failure
    state = Engine(agent, policy, ScriptedModel(), store).advance(store.last_checkpoint())
    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.TOOL_OUTCOME_UNKNOWN
    [esc] = store.escalations
    assert (esc.proposed_tool, esc.proposed_args) == ("charge", CHARGE)
    assert len(backend.keys) == 1


def test_a_crash_right_after_the_failed_step_is_committed_escalates_on_resume(
    agent, policy, release
):
    backend = Backend(release, hang=1)
    agent = _agent_with(agent, backend)
    store = InMemoryStore(crash_after_commit=3)  # retrieval, model, the timed-out charge
    model = ScriptedModel().script(tool_call_reply("charge", CHARGE, call_id="call_charge"))
    with pytest.raises(SimulatedCrash):
        Engine(agent, policy, model, store).advance(new_run("Charge A-17 five dollars"))
    assert store.kinds() == ["retrieval", "model", "tool"]

    state = Engine(agent, policy, ScriptedModel(), store).advance(store.last_checkpoint())
    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.TOOL_OUTCOME_UNKNOWN
    assert len(backend.keys) == 1  # not charged again under the next step's key
    [esc] = store.escalations
    assert (esc.proposed_tool, esc.proposed_args) == ("charge", CHARGE)
    assert store.kinds() == ["retrieval", "model", "tool", "escalation"]

    # approving still runs it again, once
    resumed = store.last_checkpoint()
    resumed.human_input = HumanInput(decision="approve", operator="op")
    state = Engine(agent, policy, ScriptedModel().script(decision_reply("Charged.")),
                   store).advance(resumed)
    assert state.status == RunStatus.SUCCEEDED
    assert len(backend.keys) == 2


def test_a_timed_out_read_is_a_plain_tool_failure(agent, policy, model, store, release):
    backend = Backend(release, hang=1)
    agent = _agent_with(agent, backend, side_effect=False, max_attempts=1)
    model.script(tool_call_reply("charge", CHARGE))
    state = Engine(agent, policy, model, store).advance(new_run("Look it up"))

    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.TOOL_FAILED
    [esc] = store.escalations
    assert esc.proposed_tool == ""  # nothing held back: reading again is safe
    assert "timed out" in store.steps_of(StepKind.TOOL)[0].error


# -- circuit breaker -----------------------------------------------------------------------


def test_an_open_breaker_fails_the_next_call_fast_without_calling_the_tool(
    agent, policy, model, store, release
):
    breaker = InMemoryBreakerStore(failure_threshold=1)
    backend = Backend(release, fail=1)
    agent = _agent_with(agent, backend, side_effect=False, max_attempts=1)
    model.script(tool_call_reply("charge", CHARGE))
    state = Engine(agent, policy, model, store, breaker=breaker).advance(new_run("Look it up"))

    assert state.reason == Reason.TOOL_FAILED
    assert store.steps_of(StepKind.TOOL)[0].error == "payment backend unavailable (HTTP 503)"
    assert breaker.states()["charge"]["state"] == OPEN
    assert len(backend.keys) == 1

    model.script(tool_call_reply("charge", CHARGE))
    state = _resume(agent, policy, model, store, "reply", "try once more", breaker=breaker)

    assert len(backend.keys) == 1  # the tool was not called
    second = store.steps_of(StepKind.TOOL)[1]
    assert "circuit open" in second.error
    assert second.attempts == 0
    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.TOOL_FAILED
    assert "circuit open" in store.escalations[-1].question
    assert model.calls[-1].messages[-1] == {"role": "user", "content": "Operator: try once more"}


def test_a_breaker_opened_during_retries_stops_them(agent, policy, model, store, release):
    breaker = InMemoryBreakerStore(failure_threshold=1)
    backend = Backend(release, fail=5)
    agent = _agent_with(agent, backend, side_effect=False, max_attempts=3)
    model.script(tool_call_reply("charge", CHARGE))
    Engine(agent, policy, model, store, breaker=breaker).advance(new_run("Look it up"))

    [step] = store.steps_of(StepKind.TOOL)
    assert len(backend.keys) == 1  # the retry met the open breaker
    assert step.attempts == 1
    assert step.error.startswith("payment backend unavailable (HTTP 503); then circuit open")
