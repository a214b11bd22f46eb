"""``runs.ledger``: a side effect is claimed before it runs and its outcome is written by the
checkpoint of its step (one commit for both, even when the lease is lost); a read-only call
is not claimed, its row comes with its outcome, under the lease's fence."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agentdesk.runtime.ports import LeaseLost
from runs import adapters, checkpoints, execution, lifecycle
from runs.models import Run, ToolCall

from .helpers import submit, writes

pytestmark = pytest.mark.usefixtures("llmsim", "data_dir")


@pytest.fixture(autouse=True)
def nothing_enqueued(monkeypatch) -> None:
    """These runs are advanced by hand on this thread: the session's Celery worker (started
    by an earlier test) must not get a message for them and take the lease first."""
    from runs import enqueue

    monkeypatch.setattr(enqueue, "advance_run", lambda *a, **k: None)


def _writes(ctx: CaptureQueriesContext) -> list[str]:
    return writes(ctx.captured_queries)


def _drive(run: Run, monkeypatch) -> tuple[list[list[str]], list[list[str]]]:
    """Advance ``run`` on this thread; per tool call, the writes from the ledger's begin to
    the step's checkpoint (the tool ran in between), and the writes of that checkpoint."""
    between: list[list[str]] = []
    tool_commits: list[list[str]] = []
    begin, commit = adapters.DjangoRunStore.ledger_begin, adapters.DjangoRunStore.commit
    open_ctx: list[CaptureQueriesContext] = []

    def watched_begin(store, key, tool, args, **kw):
        entry = begin(store, key, tool, args, **kw)
        open_ctx.append(CaptureQueriesContext(connection).__enter__())
        return entry

    def watched_commit(store, state, step=None, escalation=None):
        if open_ctx:
            ctx = open_ctx.pop()
            ctx.__exit__(None, None, None)
            between.append(_writes(ctx))
        with CaptureQueriesContext(connection) as ctx:
            commit(store, state, step, escalation)
        if step is not None and step.kind.value == "tool":
            tool_commits.append(_writes(ctx))

    monkeypatch.setattr(adapters.DjangoRunStore, "ledger_begin", watched_begin)
    monkeypatch.setattr(adapters.DjangoRunStore, "commit", watched_commit)
    while execution.advance(run.pk) == execution.MORE_WORK:
        pass
    return between, tool_commits


def test_a_side_effect_is_claimed_first_and_its_outcome_written_by_its_checkpoint(
        demo, monkeypatch, data_dir):
    run = submit(demo["team"], demo["operator"],
                 "Hello, return and refund order 1077, it never worked. - Priya")
    between, tool_commits = _drive(run, monkeypatch)
    assert Run.objects.get(pk=run.pk).status == "succeeded"
    assert between == [[], []]  # each tool ran; nothing written until its checkpoint
    lookup, refund = tool_commits
    # claimed: the outcome first; the step row with the fenced run row
    assert refund[:3] == ["UPDATE runs_toolcall", "UPDATE runs_run", "INSERT runs_step"]
    call = ToolCall.objects.get(run=run, tool="issue_refund")
    step = Run.objects.get(pk=run.pk).steps.get(kind="tool", name="issue_refund")
    assert call.status == ToolCall.Status.SUCCEEDED and call.finished_at is not None
    assert call.result == step.result and call.started_at <= call.finished_at


def test_a_read_only_call_is_recorded_with_its_outcome_not_claimed(demo, monkeypatch):
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    between, [writes] = _drive(run, monkeypatch)
    assert between == [[]]
    assert writes[:2] == ["UPDATE runs_run", "INSERT runs_step"]
    assert "INSERT runs_toolcall" in writes[2:]  # after the fence matched
    call = ToolCall.objects.get(run=run)
    step = Run.objects.get(pk=run.pk).steps.get(kind="tool")
    assert (call.tool, call.status) == ("lookup_order", ToolCall.Status.SUCCEEDED)
    assert call.result == step.result and call.args == step.args
    assert call.idempotency_key == f"{run.pk}:{step.index}"


def _taken_over(demo):
    run = lifecycle.start(submit(demo["team"], demo["operator"], "Refund 1042").pk, "worker-a")
    state, written = checkpoints.load(run)
    return run, state, adapters.DjangoRunStore(run, "worker-a", written)


def test_a_side_effects_outcome_is_written_when_the_lease_was_lost(demo):
    """Another worker took the run over while the tool ran: this checkpoint writes nothing
    of the run, but the outcome lands, for the new holder to replay instead of asking a
    human whether the refund happened."""
    run, state, store = _taken_over(demo)
    key = f"{run.pk}:1"
    assert store.ledger_begin(key, "issue_refund", {"order_id": "1042"}) is None
    store.ledger_finish(key, {"refund_id": "R-1"}, "")
    assert ToolCall.objects.get(run=run).status == ToolCall.Status.STARTED  # not yet
    Run.objects.filter(pk=run.pk).update(lease_owner="worker-b")
    with pytest.raises(LeaseLost):
        store.commit(state)
    call = ToolCall.objects.get(run=run)
    assert (call.status, call.result) == (ToolCall.Status.SUCCEEDED, {"refund_id": "R-1"})
    replay = adapters.DjangoRunStore(run, "worker-b").ledger_begin(key, "issue_refund", {})
    assert replay is not None and replay.result == {"refund_id": "R-1"}
    assert Run.objects.get(pk=run.pk).step_count == 0  # nothing of the run


def test_a_read_only_call_of_a_lost_lease_writes_nothing(demo):
    """The new holder runs it again under the same key: no row may be in its way."""
    run, state, store = _taken_over(demo)
    key = f"{run.pk}:1"
    assert store.ledger_begin(key, "lookup_order", {"order_id": "1042"},
                              side_effect=False) is None
    store.ledger_finish(key, {"status": "shipped"}, "")
    Run.objects.filter(pk=run.pk).update(lease_owner="worker-b")
    with pytest.raises(LeaseLost):
        store.commit(state)
    assert not ToolCall.objects.filter(run=run).exists()


def test_an_outcome_never_checkpointed_leaves_the_side_effect_started(demo):
    """A worker that dies after the tool returned but before its step's commit: the call
    stays started, so whoever resumes asks a human whether it happened."""
    run, _, store = _taken_over(demo)
    store.ledger_begin(f"{run.pk}:1", "issue_refund", {"order_id": "1042"})
    store.ledger_finish(f"{run.pk}:1", {"refund_id": "R-1"}, "")
    entry = adapters.DjangoRunStore(run, "worker-b").ledger_begin(f"{run.pk}:1", "issue_refund",
                                                                 {})
    assert entry is not None and entry.status == ToolCall.Status.STARTED
