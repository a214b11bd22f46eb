"""One transaction per step, and a run row that does not grow with the run (issue 16,
item 2): the run row's state holds no transcript (the steps carry it, each the part its
step added), a worker resuming the run reads it back, and each model call is settled on the
team's budget by its step's checkpoint."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agentdesk.runtime.state import RunState
from runs import agent_specs, checkpoints, services
from runs.models import Run, Step, TeamDailySpend

from .helpers import open_escalation, refunds, submit, wait_status, writes

pytestmark = pytest.mark.usefixtures("celery_worker", "data_dir")


def transcript_of(run: Run) -> list[dict]:
    messages: list[dict] = []
    for part in run.steps.exclude(transcript=None).values_list("transcript", flat=True):
        messages += part.get("messages", [])
    return messages


def approve(run: Run, operator) -> Run:
    services.decide(escalation_id=open_escalation(run).pk, user=operator, decision="approve")
    return wait_status(run, "succeeded", "failed", "waiting_human")


def test_the_run_row_holds_no_transcript_and_a_resumed_run_reads_it_back(demo, data_dir):
    run = wait_status(submit(demo["team"], demo["operator"], "I want a refund for order 1042"),
                      "waiting_human")
    assert "messages" not in run.state and "context" not in run.state
    assert not checkpoints.COLUMNS & run.state.keys()  # the columns say it once
    before = transcript_of(run)
    assert [m["role"] for m in before[:2]] == ["system", "user"]
    # the passages are stored once, in the context; the system message is marked for them
    assert before[0]["knowledge"] and "Relevant knowledge" not in before[0]["content"]
    state, written = checkpoints.load(run)
    assert state.messages[1:] == before[1:] and written.messages == len(before)
    # what the model is sent after a reload is the prompt the agent built
    assert state.messages[0] == {"role": "system", "content": agent_specs.spec_for(
        run.agent).system_prompt(state.context)}
    assert state.context and state.context == run.steps.get(kind="retrieval").transcript["context"]
    assert (state.run_id, state.input, state.status, state.step_count) == (
        str(run.pk), run.input, "waiting_human", run.step_count)
    assert (state.usage.tokens_in, state.usage.cost_usd) == (run.tokens_in, run.cost_usd) != (0, 0)

    approve(run, demo["operator"])  # a new time slice: the transcript comes back from the steps
    assert run.status == "succeeded", run.reason
    after = transcript_of(run)
    assert after[:len(before)] == before  # appended to, never rewritten
    assert any(m.get("role") == "tool" for m in after[len(before):])
    assert len(refunds(data_dir)) == 1
    # each step row carries only what its step added: no message is stored twice
    parts = [p for p in run.steps.exclude(transcript=None).values_list("transcript", flat=True)]
    assert sum(len(p.get("messages", [])) for p in parts) == len(after)


def test_a_checkpoint_written_before_the_transcript_moved_still_resumes(demo, data_dir):
    """A run paused by an older version: its messages and context are in ``run.state``, its
    steps carry none. It resumes, and its next step carries the whole transcript so far."""
    run = wait_status(submit(demo["team"], demo["operator"], "I want a refund for order 1042"),
                      "waiting_human")
    state, _ = checkpoints.load(run)
    legacy = state.model_dump(mode="json")  # the transcript and the columns' copies too
    Run.objects.filter(pk=run.pk).update(state=legacy)
    Step.objects.filter(run=run).update(transcript=None)
    seen = run.step_count

    approve(run, demo["operator"])
    assert run.status == "succeeded", run.reason
    first_new = run.steps.filter(index__gte=seen).exclude(transcript=None).first()
    assert len(first_new.transcript["messages"]) >= len(state.messages)  # all of it
    assert checkpoints.load(run)[0].messages[:len(state.messages)] == state.messages
    assert first_new.transcript["context"] == state.context
    assert "messages" not in run.state
    assert len(refunds(data_dir)) == 1


def test_messages_are_append_only():
    written = checkpoints.Written(messages=3)
    shrunk = RunState(run_id="1", agent="a", input={}, messages=[{"role": "user"}])
    with pytest.raises(ValueError, match="append-only"):
        written.take(shrunk)


def test_the_team_budget_is_settled_by_the_steps_own_commits(demo):
    """Every call's hold is given back and its cost counted, with no commit of its own: a
    model step's checkpoint is one transaction (the run, the step, the team's spend)."""
    runs = [submit(demo["team"], demo["operator"], q)
            for q in ("Where is my order 1077?", "I want a refund for order 1042")]
    for run in runs:
        wait_status(run, "succeeded", "waiting_human")
    row = TeamDailySpend.objects.get(team=demo["team"], day=timezone.now().date())
    assert row.reserved_usd == 0
    assert row.spent_usd == sum(Run.objects.get(pk=r.pk).cost_usd for r in runs) > 0
    assert all(Run.objects.get(pk=r.pk).reserved_usd == 0 for r in runs)


def test_a_model_or_tool_steps_checkpoint_is_one_transaction(demo, monkeypatch):
    """Driven by hand on this thread: a model step's commit writes the run, the team's
    spend (the call's settlement) and the step in the checkpoint's one atomic block, and
    the settlement writes nothing before it (``DjangoTeamBudget.settle`` only notes it); a
    read-only tool step's writes the run, the step, the call's row and the next call's
    hold. On Postgres either is one statement, sent on its own: no BEGIN, no COMMIT."""
    from runs import adapters, budgets, enqueue, execution

    monkeypatch.setattr(enqueue, "advance_run", lambda *a, **k: None)
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    captured: list[list[str]] = []
    commit, settle = adapters.DjangoRunStore.commit, budgets.DjangoTeamBudget.settle

    def watched_settle(budget, reserved, actual):
        with CaptureQueriesContext(connection) as ctx:
            settle(budget, reserved, actual)
        assert not [q for q in ctx.captured_queries if "UPDATE" in q["sql"].upper()]

    def watched_commit(store, state, step=None, escalation=None):
        in_transaction: list[bool] = []

        def note(execute, sql, params, many, context):
            if sql.split()[0].upper() not in ("BEGIN", "COMMIT"):  # SQLite's own
                in_transaction.append(not connection.get_autocommit())
            return execute(sql, params, many, context)

        with CaptureQueriesContext(connection) as ctx, connection.execute_wrapper(note):
            commit(store, state, step, escalation)
        if step is not None and step.kind.value in ("model", "tool"):
            captured.append((step.kind.value, writes(ctx.captured_queries),
                             [q for q in ctx.captured_queries
                              if q["sql"].split()[0].upper() in ("UPDATE", "INSERT", "WITH")],
                             in_transaction))

    monkeypatch.setattr(adapters.DjangoRunStore, "commit", watched_commit)
    monkeypatch.setattr(budgets.DjangoTeamBudget, "settle", watched_settle)
    while execution.advance(run.pk) == execution.MORE_WORK:
        pass
    assert captured
    postgres = connection.vendor == "postgresql"
    expected = {  # a model step settles its call; a tool step holds for the next one
        "model": ["UPDATE runs_run", "INSERT runs_step", "UPDATE runs_teamdailyspend"],
        "tool": ["UPDATE runs_run", "INSERT runs_step", "INSERT runs_toolcall",
                 "UPDATE runs_teamdailyspend"],
    }
    assert {kind for kind, *_ in captured} == {"model", "tool"}
    for kind, written, statements, in_transaction in captured:  # one statement on Postgres
        assert written == expected[kind]
        assert len(statements) == (1 if postgres else len(expected[kind]))
        assert not any(in_transaction) if postgres else all(in_transaction)


def test_a_system_message_that_does_not_end_with_the_passages_is_stored_as_it_is():
    context = [{"source": "a.md", "text": "Refunds within 30 days.", "title": "", "score": 1.0}]
    own = {"role": "system", "content": "My agent's own prompt, passages elsewhere."}
    state = RunState(run_id="1", agent="a", input={}, context=context,
                     messages=[own, {"role": "user", "content": "hi"}])
    assert checkpoints.Written().take(state)["messages"][0] == own


def test_a_worker_takes_a_free_run_with_one_locked_read_and_one_update(demo, monkeypatch):
    """``lifecycle.start``: the run row is read once, locked, with what the slice needs, and
    the lease is taken only from a run that is free — queued, or its lease expired."""
    from datetime import timedelta

    from runs import enqueue, lifecycle

    monkeypatch.setattr(enqueue, "advance_run", lambda *a, **k: None)
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    with CaptureQueriesContext(connection) as ctx:
        taken = lifecycle.start(run.pk, "worker-a")
    sql = [q["sql"] for q in ctx.captured_queries
           if q["sql"].split()[0] not in ("BEGIN", "COMMIT")]
    assert [s.split()[0] for s in sql] == ["SELECT", "UPDATE"], sql
    if connection.vendor == "postgresql":
        assert 'FOR UPDATE OF "runs_run"' in sql[0]
    assert (taken.lease_owner, taken.status) == ("worker-a", "running")
    assert taken.agent.slug == "support-refunds" and taken.team == demo["team"]
    assert taken.policy is not None  # from the snapshot read with it
    stored = Run.objects.get(pk=run.pk)
    assert (stored.lease_owner, stored.lease_expires_at) == ("worker-a", taken.lease_expires_at)

    assert lifecycle.start(run.pk, "worker-b") is None  # a live lease is not taken
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert lifecycle.start(run.pk, "worker-b").lease_owner == "worker-b"  # an expired one is
    Run.objects.filter(pk=run.pk).update(status="waiting_human", lease_owner="")
    assert lifecycle.start(run.pk, "worker-c") is None  # waits for a human: not a worker's
    assert lifecycle.start(10**9, "worker-c") is None  # no such run
