"""``runs.statements``: the checkpoint's UPDATE and INSERT, compiled once, store what the ORM
would store (read back through the ORM), and the fence refuses as the ORM's filter did."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs import statements
from runs.models import Run, Step

from .console_data import waiting_run


def test_a_fenced_update_writes_every_kind_of_value_and_refuses_a_wrong_fence(demo):
    run = waiting_run(demo["team"])
    now = timezone.now()
    values = {"state": {"phase": "act", "nested": [1, "two", None]}, "step_count": 7,
              "cost_usd": Decimal("0.00012345"), "updated_at": now, "answer": "it's 'done'",
              "reserved_on": date(2026, 11, 28), "lease_expires_at": None}
    fence = {"id": run.pk, "status": "waiting_human", "lease_owner": ""}
    assert statements.update_where(Run, fence, values) == 1
    stored = Run.objects.get(pk=run.pk)
    for name, value in values.items():
        assert getattr(stored, name) == value, name

    # the same columns with other NULLs: a shape of its own, still right
    other = {**values, "reserved_on": None, "lease_expires_at": now + timedelta(minutes=5)}
    assert statements.update_where(Run, fence, other) == 1
    stored.refresh_from_db()
    assert stored.reserved_on is None and stored.lease_expires_at == other["lease_expires_at"]

    # a fence that no longer holds changes nothing
    assert statements.update_where(Run, {**fence, "lease_owner": "someone"},
                                   {**values, "step_count": 99}) == 0
    assert statements.update_where(Run, {**fence, "status": "running"},
                                   {**values, "step_count": 99}) == 0
    assert Run.objects.get(pk=run.pk).step_count == 7


def test_an_insert_returns_the_saved_row_as_the_orm_reads_it(demo):
    run = waiting_run(demo["team"])
    rows = [statements.insert(Step(run=run, index=i, kind="model", name="ask",
                                   cost_usd=Decimal("0.0001"), confidence=conf,
                                   args={"tier": "small"}, result=result,
                                   transcript={"messages": [{"role": "user", "content": "hi"}]}))
            for i, (conf, result) in enumerate([(0.75, {"ok": True}), (None, None)])]
    assert [r.pk for r in rows] == list(Step.objects.filter(run=run).order_by("index")
                                       .values_list("pk", flat=True))
    first, second = (Step.objects.get(pk=r.pk) for r in rows)
    assert first.created_at == rows[0].created_at is not None
    assert (first.confidence, first.result, first.args) == (0.75, {"ok": True}, {"tier": "small"})
    assert first.transcript == {"messages": [{"role": "user", "content": "hi"}]}
    assert (second.confidence, second.result, second.attempts) == (None, None, 1)
    assert not rows[0]._state.adding


def test_an_expression_is_refused_not_written_wrong(demo):
    run = waiting_run(demo["team"])
    with pytest.raises(TypeError, match="expressions"):
        statements.update_where(Run, {"id": run.pk, "status": "waiting_human"},
                                {"step_count": F("step_count") + 1})


def test_an_update_with_expressions_is_compiled_once_and_binds_each_calls_values(demo):
    """The team budget's conditional UPDATE: the first call compiles it, later calls only
    bind their values, and the condition still refuses what does not fit."""
    from runs import budgets
    from runs.models import TeamDailySpend

    team = demo["team"]
    team.daily_budget_usd = Decimal("1.00")
    team.save()
    day = date(2026, 11, 29)
    TeamDailySpend.objects.create(team=team, day=day, spent_usd=Decimal("0.25"))
    assert budgets.hold_next(team.pk, Decimal("0.5"), day)
    assert budgets.hold_next(team.pk, Decimal("0.125"), day)
    assert not budgets.hold_next(team.pk, Decimal("0.25"), day)  # 0.25 + 0.625 + 0.25 > 1
    row = TeamDailySpend.objects.get(team=team, day=day)
    assert row.reserved_usd == Decimal("0.625")
    assert not budgets.hold_next(team.pk, Decimal("0.01"), date(2026, 11, 30))  # no row


def test_values_in_another_order_than_the_compiled_statement_are_refused(demo):
    """The first call checks the caller's order against the ORM's own parameters: a value
    bound to the wrong column fails loudly instead of being written."""
    run = waiting_run(demo["team"])

    def build():
        return Run.objects.filter(pk=run.pk, status="waiting_human"), \
            {"step_count": F("step_count") + 5}

    with pytest.raises(TypeError, match="compiled statement takes"):
        statements.update("test-order", [run.pk, 5, "waiting_human"], build)
    assert statements.update("test-order", [5, run.pk, "waiting_human"], build) == 1
    assert statements.update("test-order", [2, run.pk, "waiting_human"], build) == 1
    assert Run.objects.get(pk=run.pk).step_count == run.step_count + 7


def test_the_step_row_is_inserted_only_when_the_fence_matched(demo, django_assert_num_queries):
    """The checkpoint's run UPDATE and step INSERT: both rows or neither, in one statement
    on Postgres (two elsewhere), every value stored as the ORM stores it."""
    from django.db import connection

    run = waiting_run(demo["team"])
    fence = {"id": run.pk, "status": "waiting_human", "lease_owner": ""}
    step = Step(run=run, index=0, kind="model", name="ask", cost_usd=Decimal("0.0001"),
                confidence=0.5, args={"tier": "small", "quote": "it's"}, result=None,
                transcript={"messages": [{"role": "assistant", "content": "ok"}]})
    statements_expected = 1 if connection.vendor == "postgresql" else 2
    with django_assert_num_queries(statements_expected):
        assert statements.update_where_then_insert(Run, fence, {"step_count": 1}, step).matched
    stored = Step.objects.get(pk=step.pk)
    assert (stored.run_id, stored.confidence, stored.args, stored.result) == \
        (run.pk, 0.5, {"tier": "small", "quote": "it's"}, None)
    assert stored.transcript == {"messages": [{"role": "assistant", "content": "ok"}]}
    assert stored.created_at == step.created_at and not step._state.adding
    assert Run.objects.get(pk=run.pk).step_count == 1

    lost = Step(run=run, index=1, kind="model", name="ask")
    assert not statements.update_where_then_insert(
        Run, {**fence, "lease_owner": "someone"}, {"step_count": 2}, lost).matched
    assert lost.pk is None and lost._state.adding
    assert Step.objects.filter(run=run).count() == 1
    assert Run.objects.get(pk=run.pk).step_count == 1


def budgeted(demo) -> tuple[Any, date, Run, dict[str, Any]]:
    """The demo team with a daily budget of $1.00, $0.25 of it spent on ``day``; a run of
    it waiting for a human, and the fence that matches that run."""
    from runs.models import TeamDailySpend

    team = demo["team"]
    team.daily_budget_usd = Decimal("1.00")
    team.save()
    day = date(2026, 11, 29)
    TeamDailySpend.objects.create(team=team, day=day, spent_usd=Decimal("0.25"))
    run = waiting_run(team)
    return team, day, run, {"id": run.pk, "status": "waiting_human", "lease_owner": ""}


def test_an_update_after_the_fence_changes_its_row_only_when_the_fence_matched(demo):
    """The checkpoint's team budget UPDATE (``then``) rides in the run's statement: it
    changes the team's row when the fence matched and the hold fits, never otherwise, and
    says how many rows it changed."""
    from runs import budgets
    from runs.models import TeamDailySpend

    team, day, run, fence = budgeted(demo)

    def step(index):
        return Step(run=run, index=index, kind="tool", name="lookup_order")

    def reserved():
        return TeamDailySpend.objects.get(team=team, day=day).reserved_usd

    hold = budgets.hold_statement(team.pk, Decimal("0.5"), day)
    done = statements.update_where_then_insert(Run, fence, {"step_count": 1}, step(0),
                                               then=hold)
    assert (done.matched, done.then_rows, reserved()) == (True, 1, Decimal("0.5"))

    too_much = budgets.hold_statement(team.pk, Decimal("0.5"), day)  # 0.25 + 0.5 + 0.5 > 1
    done = statements.update_where_then_insert(Run, fence, {"step_count": 2}, step(1),
                                               then=too_much)
    assert (done.matched, done.then_rows, reserved()) == (True, 0, Decimal("0.5"))

    fits = budgets.hold_statement(team.pk, Decimal("0.125"), day)
    lost = step(2)
    done = statements.update_where_then_insert(Run, {**fence, "lease_owner": "someone"},
                                               {"step_count": 3}, lost, then=fits)
    assert (done.matched, done.then_rows, reserved()) == (False, 0, Decimal("0.5"))
    assert lost.pk is None and Run.objects.get(pk=run.pk).step_count == 2
    assert Step.objects.filter(run=run).count() == 2


def test_values_the_run_takes_only_when_the_update_after_the_fence_changed_no_row(demo):
    """A tool step's checkpoint holds the next call on the team's row (``then``) and on the
    run's (``reserved_usd``, ``reserved_on``): a hold the team refuses is not the run's
    either (``unless_then``), decided in the same statement on Postgres."""
    from django.db import connection

    from runs import budgets
    from runs.models import TeamDailySpend

    team, day, run, fence = budgeted(demo)
    unless = {"reserved_usd": budgets.ZERO, "reserved_on": None}

    def hold(amount, index, where=fence):
        values = {"step_count": index + 1, "reserved_usd": amount, "reserved_on": day}
        return statements.update_where_then_insert(
            Run, where, values, Step(run=run, index=index, kind="tool", name="lookup_order"),
            then=budgets.hold_statement(team.pk, amount, day), unless_then=unless,
            returning=("reserved_usd", "reserved_on", "step_count"))

    def sides():
        row = Run.objects.get(pk=run.pk)
        return (row.reserved_usd, row.reserved_on,
                TeamDailySpend.objects.get(team=team, day=day).reserved_usd)

    done = hold(Decimal("0.5"), 0)
    assert (done.matched, done.then_rows) == (True, 1)
    assert done.returned == (Decimal("0.5"), day, 1)  # as the ORM reads them
    assert sides() == (Decimal("0.5"), day, Decimal("0.5"))

    done = hold(Decimal("0.5"), 1)  # 0.25 spent + 0.5 held + 0.5 > 1: refused
    assert (done.matched, done.then_rows) == (True, 0)
    assert sides() == (Decimal("0"), None, Decimal("0.5"))  # the run holds nothing either
    assert Step.objects.filter(run=run).count() == 2  # the step is written all the same

    done = hold(Decimal("0.125"), 2, {**fence, "lease_owner": "someone"})  # not ours
    assert not done.matched and sides() == (Decimal("0"), None, Decimal("0.5"))
    assert Step.objects.filter(run=run).count() == 2
    if connection.vendor == "postgresql":  # one statement whatever the team said
        with CaptureQueriesContext(connection) as ctx:
            hold(Decimal("0.5"), 3)
        assert len(ctx.captured_queries) == 1


def test_other_rows_ride_with_the_step_only_when_the_fence_matched(demo):
    """A read-only tool call's row (``also``) is inserted with its step's, or not at all."""
    from runs.models import ToolCall

    run = waiting_run(demo["team"])
    fence = {"id": run.pk, "status": "waiting_human", "lease_owner": ""}

    def call(key):
        return ToolCall(run=run, idempotency_key=key, tool="lookup_order",
                        args={"order_id": "1077"}, status="succeeded",
                        result={"status": "shipped"}, started_at=timezone.now(),
                        finished_at=timezone.now())

    ok = call(f"{run.pk}:0")
    done = statements.update_where_then_insert(
        Run, fence, {"step_count": 1}, Step(run=run, index=0, kind="tool", name="lookup_order"),
        also=[ok])
    assert done.matched and ok.pk is not None and not ok._state.adding
    assert ToolCall.objects.get(pk=ok.pk).result == {"status": "shipped"}

    lost = call(f"{run.pk}:1")
    done = statements.update_where_then_insert(
        Run, {**fence, "lease_owner": "someone"}, {"step_count": 2},
        Step(run=run, index=1, kind="tool", name="lookup_order"), also=[lost])
    assert not done.matched and lost.pk is None
    assert list(ToolCall.objects.filter(run=run).values_list("pk", flat=True)) == [ok.pk]


def test_one_value_by_primary_key_as_the_orm_reads_it(demo):
    """``value_of``: what ``filter(pk=…).values_list(name, flat=True).first()`` gives,
    converted as the ORM converts it (a datetime from SQLite's text), None for no row."""
    from runs.models import Team

    team = demo["team"]
    team.max_running_runs = 3
    team.save()
    assert statements.value_of(Team, "max_running_runs", team.pk) == 3
    assert statements.value_of(Team, "max_running_runs", 10**9) is None
    run = waiting_run(team)
    assert statements.value_of(Run, "created_at", run.pk) == \
        Run.objects.values_list("created_at", flat=True).get(pk=run.pk)


def test_a_pair_of_rows_is_one_statement_on_postgres_and_both_or_neither(demo):
    """``insert_pair``: the run, and its audit row naming the run's new id; on Postgres one
    statement and no transaction around it. A failure of either row leaves neither."""
    from django.db import IntegrityError, connection, transaction

    from runs.models import AuditEvent

    team = demo["team"]
    like = waiting_run(team)  # its agent and policy snapshot

    def pair(key: str, team_id: int | None = None) -> tuple[Run, AuditEvent]:
        run = Run(team=team, agent_id=like.agent_id, snapshot_id=like.snapshot_id,
                  input={"message": "hi"}, state={}, idempotency_key=key)
        return run, AuditEvent(team_id=team_id or team.pk, action="run.submitted",
                               target_type="run", detail={"key": key})

    run, audit = pair("one")
    with CaptureQueriesContext(connection) as queries:
        statements.insert_pair(run, audit, pk_into="target_id")
    assert run.pk is not None and not run._state.adding and not audit._state.adding
    assert audit.target_id == str(run.pk)
    assert AuditEvent.objects.get(pk=audit.pk).target_id == str(run.pk)
    if connection.vendor == "postgresql":
        assert [q["sql"].split()[0] for q in queries.captured_queries] == ["WITH"]

    audits = AuditEvent.objects.count()
    taken, its_audit = pair("one")  # the first row fails: the team's key is taken
    with pytest.raises(IntegrityError):
        statements.insert_pair(taken, its_audit, pk_into="target_id")
    runs = Run.objects.count()
    no_team, its_audit = pair("two", team_id=10**9)  # the second row fails (its team)
    with pytest.raises(IntegrityError):
        statements.insert_pair(no_team, its_audit, pk_into="target_id")
    assert (Run.objects.count(), AuditEvent.objects.count()) == (runs, audits)

    with transaction.atomic():  # inside a caller's transaction: it stays usable
        with pytest.raises(IntegrityError):
            statements.insert_pair(*pair("one"), pk_into="target_id")
        assert Run.objects.filter(idempotency_key="one").count() == 1


def test_a_statement_run_often_is_prepared_on_its_connection(demo):
    """On Postgres the server binds the values and prepares a statement once it ran five
    times on a connection (``DB_PREPARED_STATEMENTS``): the checkpoint's and the
    submission's texts repeat with new values, and Postgres then skips parsing and planning
    them. A text of its own: a pooled connection may have run any of the app's before."""
    import uuid

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are Postgres's")
    marker = uuid.uuid4().hex
    statement = f"SELECT %s::int AS n /* {marker} */"

    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute(statement, [1])

    def prepared() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements "
                           "WHERE statement LIKE %s", [f"%{marker}%"])
            return cursor.fetchone()[0]

    for _ in range(5):
        run()
    assert prepared() == 0
    for _ in range(2):
        run()
    assert prepared() == 1
