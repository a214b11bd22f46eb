"""Crash safety: any checkpoint resumes on a fresh engine without repeating a step or a refund."""

from __future__ import annotations

import copy
import json

import pytest

from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import Phase, Reason, RunStatus, StepKind
from agentdesk.runtime.state import HumanInput, RunState

from .conftest import new_run
from .fakes import InMemoryStore, ScriptedModel, SimulatedCrash, decision_reply, tool_call_reply

SMALL_REFUND = {"order_id": "1001", "amount": 25.0, "reason": "broken mug"}
LARGE_REFUND = {"order_id": "1042", "amount": 180.0, "reason": "arrived broken"}


def refund_replies(args):
    return [
        tool_call_reply("lookup_order", {"order_id": args["order_id"]}, call_id="c1"),
        tool_call_reply("issue_refund", args, call_id="c2"),
        decision_reply("Your refund is on its way.", confidence=0.9),
    ]


def drive(agent, policy, model, store, state: RunState) -> RunState:
    """Advance like the worker would, approving every escalation, until the run ends."""
    for _ in range(10):
        state = Engine(agent, policy, model, store).advance(state)
        if state.status.is_terminal:
            return state
        if state.status == RunStatus.WAITING_HUMAN:
            assert state.reason == Reason.APPROVAL_REQUIRED
            state.human_input = HumanInput(decision="approve", operator="op")
    raise AssertionError("the run did not end")


def signature(steps):
    return [(s.index, str(s.kind), s.name, s.error) for s in steps]


@pytest.mark.parametrize("refund", [SMALL_REFUND, LARGE_REFUND], ids=["no-approval", "approval"])
def test_resuming_from_every_checkpoint_never_repeats_a_step(
    agent, policy, data_dir, journal, refund
):
    journal_file = data_dir / "refunds.jsonl"
    history = []  # what survives a crash right after each commit

    def remember(s: InMemoryStore) -> None:
        text = journal_file.read_text() if journal_file.exists() else ""
        history.append((copy.deepcopy(s.snapshots[-1]), copy.deepcopy(s.ledger), text))

    ref_model = ScriptedModel().script(*refund_replies(refund))
    ref_store = InMemoryStore(after_commit=remember)
    ref = drive(agent, policy, ref_model, ref_store, new_run(f"Refund order {refund['order_id']}"))
    assert ref.status == RunStatus.SUCCEEDED
    assert len(journal()) == 1
    assert len(history) == len(ref_store.steps) >= 7

    for k, (snapshot, ledger, journal_text) in enumerate(history):
        journal_file.write_text(journal_text)
        done_calls = len([s for s in ref_store.steps[: k + 1] if s.kind == StepKind.MODEL])
        model = ScriptedModel().script(*refund_replies(refund)[done_calls:])
        store = InMemoryStore()
        store.ledger = copy.deepcopy(ledger)
        state = drive(agent, policy, model, store, RunState.model_validate(snapshot))

        where = f"resumed after commit {k + 1}"
        assert signature(store.steps) == signature(ref_store.steps[k + 1 :]), where
        assert (state.status, state.answer) == (ref.status, ref.answer), where
        assert state.usage == ref.usage, where
        assert [c.messages for c in model.calls] == [
            c.messages for c in ref_model.calls[done_calls:]
        ], where
        assert model.remaining == 0, where
        assert len(journal()) == 1, where


def _refund_run(agent, policy, store, *, then=()):
    model = ScriptedModel().script(*refund_replies(SMALL_REFUND)[:2], *then)
    return model, Engine(agent, policy, model, store)


def test_crash_after_ledger_begin_escalates_instead_of_refunding_again(agent, policy, journal):
    store = InMemoryStore(crash_after_ledger_begin="issue_refund")
    _, engine = _refund_run(agent, policy, store)
    with pytest.raises(SimulatedCrash):
        engine.advance(new_run("Refund order 1001"))
    [started] = [r for r in store.ledger.values() if r["tool"] == "issue_refund"]
    assert started["status"] == "started"

    model = ScriptedModel()  # nothing scripted: no model call may happen
    state = Engine(agent, policy, model, store).advance(store.last_checkpoint())

    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.TOOL_OUTCOME_UNKNOWN
    [esc] = store.escalations
    assert esc.reason == Reason.TOOL_OUTCOME_UNKNOWN
    assert (esc.proposed_tool, esc.proposed_args) == ("issue_refund", SMALL_REFUND)
    assert journal() == []
    assert model.calls == []
    assert not [s for s in store.steps_of(StepKind.TOOL) if s.name == "issue_refund"]

    # the operator checked: it did not happen, run it again -> exactly one refund
    resumed = store.last_checkpoint()
    resumed.human_input = HumanInput(decision="approve", operator="op")
    model.script(decision_reply("Refunded."))
    state = Engine(agent, policy, model, store).advance(resumed)
    assert state.status == RunStatus.SUCCEEDED
    assert len(journal()) == 1


def test_crash_after_ledger_begin_of_a_read_only_tool_just_runs_it(agent, policy):
    store = InMemoryStore(crash_after_ledger_begin="lookup_order")
    _, engine = _refund_run(agent, policy, store)
    with pytest.raises(SimulatedCrash):
        engine.advance(new_run("Where is order 1001?"))

    model = ScriptedModel().script(decision_reply("Delivered."))
    state = Engine(agent, policy, model, store).advance(store.last_checkpoint())
    assert state.status == RunStatus.SUCCEEDED
    assert store.escalations == []
    [lookup] = store.steps_of(StepKind.TOOL)
    assert lookup.error == "" and lookup.result["order_id"] == "1001"


def test_crash_after_ledger_finish_replays_the_recorded_result(agent, policy, journal):
    store = InMemoryStore(crash_after_ledger_finish="issue_refund")
    _, engine = _refund_run(agent, policy, store)
    with pytest.raises(SimulatedCrash):
        engine.advance(new_run("Refund order 1001"))
    [refund] = journal()
    assert store.last_checkpoint().pending_call.tool == "issue_refund"  # never committed

    model = ScriptedModel().script(decision_reply("Your refund is on its way."))
    state = Engine(agent, policy, model, store).advance(store.last_checkpoint())

    assert state.status == RunStatus.SUCCEEDED
    assert journal() == [refund]
    [step] = [s for s in store.steps_of(StepKind.TOOL) if s.name == "issue_refund"]
    assert step.result == refund
    assert step.args["replayed_from_ledger"] is True
    assert json.loads(model.calls[0].messages[-1]["content"]) == {"ok": True, "result": refund}


def test_crash_right_after_a_commit_loses_nothing(agent, policy, journal):
    # a real crash mid-advance (not a restored copy): the in-memory state is discarded
    store = InMemoryStore(crash_after_commit=3)  # retrieval, model, tool lookup
    _, engine = _refund_run(agent, policy, store)
    with pytest.raises(SimulatedCrash):
        engine.advance(new_run("Refund order 1001"))
    assert store.kinds() == ["retrieval", "model", "tool"]

    model = ScriptedModel().script(*refund_replies(SMALL_REFUND)[1:])
    state = Engine(agent, policy, model, store).advance(store.last_checkpoint())
    assert state.status == RunStatus.SUCCEEDED
    assert [s.index for s in store.steps] == list(range(len(store.steps)))
    assert store.kinds() == ["retrieval", "model", "tool", "model", "tool", "model", "final"]
    assert len(journal()) == 1


def test_checkpoints_keep_the_phase_as_its_plain_string():
    """``Phase`` does not change the checkpoint format: JSON written before it still loads."""
    assert [p.value for p in Phase] == [
        "retrieve", "reason", "decide", "act", "outcome_unknown", "tool_failed", "await_human",
        "done",
    ]
    state = RunState(run_id="r1", agent="support_refunds", input={}, phase=Phase.TOOL_FAILED)
    assert state.model_dump(mode="json")["phase"] == "tool_failed"
    assert json.loads(json.dumps(state.model_dump(), default=str))["phase"] == "tool_failed"
    old = {**state.model_dump(mode="json"), "phase": "outcome_unknown"}
    assert RunState.model_validate(old).phase is Phase.OUTCOME_UNKNOWN
    assert RunState(run_id="r2", agent="support_refunds", input={}).phase is Phase.RETRIEVE
