"""A worker thread holds no database connection while it waits on a model (issue 16,
throughput): with psycopg's pool the connection goes back for the call, and the next query
takes one again. Without a pool (SQLite) nothing changes."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from agentdesk.runtime.profiles import ModelProfile
from agentdesk.testing import answer
from runs.connections import ConnectionFreeModel, give_back
from runs.models import Team

pooled = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="Postgres pool only")


class Recorder:
    """A model that notes whether its thread held a database connection when called."""

    def __init__(self) -> None:
        self.held: list[bool] = []

    def complete(self, **kwargs):
        self.held.append(connection.connection is not None)
        return answer("done", confidence=0.9)


@pooled
@pytest.mark.django_db(transaction=True)
def test_the_connection_goes_back_to_the_pool_for_the_model_call():
    Team.objects.count()  # this thread holds a connection now
    assert connection.connection is not None
    model = Recorder()
    reply = ConnectionFreeModel(model).complete(profile=ModelProfile(name="m"), messages=[],
                                                tools=[], max_tokens=10)
    assert "done" in reply.content
    assert model.held == [False]
    assert Team.objects.count() >= 0  # and the next query takes one again


@pooled
@pytest.mark.django_db(transaction=True)
def test_a_connection_in_a_transaction_is_kept():
    with transaction.atomic():
        Team.objects.count()
        give_back()
        assert connection.connection is not None


@pytest.mark.django_db(transaction=True)
def test_without_a_pool_nothing_is_closed(settings):
    if connection.vendor == "postgresql":
        pytest.skip("the embedded default (SQLite) has no pool")
    Team.objects.count()
    held = connection.connection
    give_back()
    assert connection.connection is held


@pooled
@pytest.mark.django_db(transaction=True)
def test_the_connection_goes_back_before_a_tool_runs(demo, monkeypatch):
    """A tool runs in a thread of its own for up to its timeout: the worker thread that
    waits on it holds no connection, whether the call was claimed first or not."""
    from runs import adapters, enqueue, lifecycle
    from runs.models import ToolCall

    from .helpers import submit

    monkeypatch.setattr(enqueue, "advance_run", lambda *a, **k: None)
    run = lifecycle.start(submit(demo["team"], demo["operator"], "Refund 1042").pk, "w")
    store = adapters.DjangoRunStore(run, "w")
    assert store.ledger_begin(f"{run.pk}:1", "lookup_order", {}, side_effect=False) is None
    assert connection.connection is None
    assert store.ledger_begin(f"{run.pk}:2", "issue_refund", {"order_id": "1042"}) is None
    assert connection.connection is None
    assert ToolCall.objects.get(run=run).status == ToolCall.Status.STARTED  # it was claimed
