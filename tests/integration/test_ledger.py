"""``runs.ledger``: a tool call is recorded as started before it runs, and its outcome is
written by the checkpoint of its step — one commit for both, even when the lease is lost."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agentdesk.runtime.ports import LeaseLost
from runs import adapters, checkpoints, execution, lifecycle
from runs.models import Run, ToolCall

from .helpers import submit

pytestmark = pytest.mark.usefixtures("llmsim", "data_dir")


def test_a_tool_steps_outcome_is_written_by_its_checkpoint(demo, monkeypatch):
    """Driven by hand on this thread: between the ledger's begin and the step's checkpoint
    nothing is written; the checkpoint's one transaction writes the outcome, the run and
    the step, and the ledger row holds what the step holds."""
    from runs import enqueue

    monkeypatch.setattr(enqueue, "advance_run", lambda *a, **k: None)
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    writes_after_begin: list[list[str]] = []
    tool_commits: list[list[str]] = []
    begin, commit = adapters.DjangoRunStore.ledger_begin, adapters.DjangoRunStore.commit
    watching: list[CaptureQueriesContext] = []

    def watched_begin(store, key, tool, args):
        entry = begin(store, key, tool, args)
        ctx = CaptureQueriesContext(connection)
        ctx.__enter__()
        watching.append(ctx)
        return entry

    def watched_commit(store, state, step=None, escalation=None):
        if watching:
            ctx = watching.pop()
            ctx.__exit__(None, None, None)
            writes_after_begin.append([q["sql"] for q in ctx.captured_queries
                                       if q["sql"].split()[0].upper() in ("UPDATE", "INSERT")])
        with CaptureQueriesContext(connection) as ctx:
            commit(store, state, step, escalation)
        if step is not None and step.kind.value == "tool":
            tool_commits.append([q["sql"] for q in ctx.captured_queries])

    monkeypatch.setattr(adapters.DjangoRunStore, "ledger_begin", watched_begin)
    monkeypatch.setattr(adapters.DjangoRunStore, "commit", watched_commit)
    while execution.advance(run.pk) == execution.MORE_WORK:
        pass
    assert writes_after_begin == [[]]  # the tool ran; nothing written until its checkpoint
    [statements] = tool_commits
    tables = [s.split()[1] if s.upper().startswith("UPDATE") else s.split()[2]
              for s in statements if s.split()[0].upper() in ("UPDATE", "INSERT")]
    assert tables[:2] == ['"runs_toolcall"', '"runs_run"'] and tables[-1] == '"runs_step"'
    call = ToolCall.objects.get(run=run)
    step = Run.objects.get(pk=run.pk).steps.get(kind="tool")
    assert call.status == ToolCall.Status.SUCCEEDED and call.finished_at is not None
    assert call.result == step.result and call.tool == step.name == "lookup_order"


def test_the_outcome_is_written_when_the_lease_was_lost(demo, monkeypatch):
    """Another worker took the run over while the tool ran: this checkpoint writes nothing
    of the run, but the outcome lands, for the new holder to replay instead of asking a
    human whether the call happened."""
    from runs import enqueue

    monkeypatch.setattr(enqueue, "advance_run", lambda *a, **k: None)
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    run = lifecycle.start(run.pk, "worker-a")
    state, written = checkpoints.load(run)
    store = adapters.DjangoRunStore(run, "worker-a", written)
    assert store.ledger_begin(f"{run.pk}:1", "issue_refund", {"order_id": "1042"}) is None
    store.ledger_finish(f"{run.pk}:1", {"refund_id": "R-1"}, "")
    assert ToolCall.objects.get(run=run).status == ToolCall.Status.STARTED  # not yet
    Run.objects.filter(pk=run.pk).update(lease_owner="worker-b")  # taken over
    with pytest.raises(LeaseLost):
        store.commit(state)
    call = ToolCall.objects.get(run=run)
    assert (call.status, call.result) == (ToolCall.Status.SUCCEEDED, {"refund_id": "R-1"})
    assert store.ledger_begin(f"{run.pk}:1", "issue_refund", {}).result == {"refund_id": "R-1"}
    assert Run.objects.get(pk=run.pk).step_count == state.step_count  # nothing of the run


def test_an_outcome_never_checkpointed_leaves_the_call_started(demo):
    """A worker that dies after the tool returned but before its step's commit: the call
    stays started, so whoever resumes treats its outcome as unknown (the engine asks a
    human for a side effect)."""
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    run = lifecycle.start(run.pk, "worker-a")
    store = adapters.DjangoRunStore(run, "worker-a", checkpoints.Written())
    store.ledger_begin(f"{run.pk}:1", "issue_refund", {"order_id": "1042"})
    store.ledger_finish(f"{run.pk}:1", {"refund_id": "R-1"}, "")
    entry = adapters.DjangoRunStore(run, "worker-b").ledger_begin(f"{run.pk}:1", "issue_refund",
                                                                 {})
    assert entry is not None and entry.status == ToolCall.Status.STARTED
