"""The submit path's shortcuts change nothing a client or an admin can see: a key this
process remembers is refused the moment it is revoked or deleted, an edit of the agent,
its policy, its models or its rules — by any means — is in the next run's snapshot, and a
run is enqueued only once its row is committed."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection, connections
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs import api_keys, enqueue, services
from runs.models import Agent, ApiKey, ModelProfile, Policy, Rule, Run

from .conftest import ApiClient, submit_body


def _key_reads(queries: CaptureQueriesContext) -> int:
    return sum(1 for q in queries.captured_queries if "runs_apikey" in q["sql"]
               and q["sql"].lstrip().upper().startswith("SELECT"))


def test_a_remembered_key_is_not_read_from_the_database_again(demo):
    new = api_keys.create_api_key(team=demo["team"], name="hot")
    client = ApiClient(new.raw)
    assert client.get("/runs").status_code == 200
    assert api_keys.remembered(new.raw) is not None
    with CaptureQueriesContext(connection) as queries:
        assert client.post("/runs", submit_body()).status_code == 201
    assert _key_reads(queries) == 0


def test_a_remembered_key_is_refused_at_once_when_revoked(demo):
    new = api_keys.create_api_key(team=demo["team"], name="old")
    client = ApiClient(new.raw)
    assert client.post("/runs", submit_body()).status_code == 201
    assert api_keys.remembered(new.raw) is not None  # this process would not read it again
    # revoke_api_key leaves this process's memory alone, as a revocation in another process
    # (admin, another web worker) would: only the shared generation tells
    api_keys.revoke_api_key(new.key.pk)
    response = client.post("/runs", submit_body())
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    assert client.get("/runs").status_code == 401
    assert Run.objects.count() == 1


def test_a_remembered_key_is_refused_at_once_when_deleted(demo):
    new = api_keys.create_api_key(team=demo["team"], name="gone")
    client = ApiClient(new.raw)
    assert client.get("/runs").status_code == 200
    ApiKey.objects.filter(pk=new.key.pk).delete()
    assert client.get("/runs").status_code == 401


def test_keys_are_read_again_when_the_cache_was_emptied(demo):
    new = api_keys.create_api_key(team=demo["team"], name="flushed")
    client = ApiClient(new.raw)
    assert client.get("/runs").status_code == 200
    cache.clear()  # the generation is gone: the first reader puts a new one
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/runs").status_code == 200
    assert _key_reads(queries) == 1
    api_keys.revoke_api_key(new.key.pk)
    assert client.get("/runs").status_code == 401


def test_a_key_changed_around_api_keys_is_read_again_after_a_while(demo, monkeypatch):
    """The backstop: a revocation by raw SQL does not change the generation, so a process
    that remembers the key reads it again only after REMEMBER_SECONDS."""
    new = api_keys.create_api_key(team=demo["team"], name="raw")
    client = ApiClient(new.raw)
    assert client.get("/runs").status_code == 200
    ApiKey.objects.filter(pk=new.key.pk).update(revoked_at=timezone.now())
    assert client.get("/runs").status_code == 200
    later = api_keys.time.monotonic() + api_keys.REMEMBER_SECONDS + 1
    monkeypatch.setattr(api_keys.time, "monotonic", lambda: later)
    assert client.get("/runs").status_code == 401


def test_the_rate_limit_counts_remembered_keys_too(make_key):
    client = ApiClient(make_key(rate=2))
    assert [client.post("/runs", submit_body()).status_code for _ in range(3)] == [201, 201,
                                                                                  429]


def _submit(demo, message: str = "Where is my order 1077?") -> Run:
    return services.submit_run(team=demo["team"], agent_slug="support-refunds",
                               task_input={"message": message}, user_id=None)


def _fresh(agent: Agent) -> dict:
    return Agent.objects.select_related("policy").get(pk=agent.pk).policy.snapshot() \
        .model_dump(mode="json")


def test_the_snapshot_is_the_policy_s_and_built_once(demo, monkeypatch):
    built = []
    original = Policy.snapshot
    monkeypatch.setattr(Policy, "snapshot", lambda self: built.append(1) or original(self))
    first, second = _submit(demo), _submit(demo)
    assert len(built) <= 1  # the second submission reused it (the first may have too)
    agent = Agent.objects.get(team=demo["team"], slug="support-refunds")
    monkeypatch.setattr(Policy, "snapshot", original)
    for run in (first, second):
        assert run.policy_snapshot == _fresh(agent)
        assert Run.objects.get(pk=run.pk).policy_snapshot == _fresh(agent)
    assert first.snapshot_id == second.snapshot_id  # stored once, for both runs
    assert after_edit(agent, demo).snapshot_id != first.snapshot_id


def after_edit(agent: Agent, demo) -> Run:
    Policy.objects.filter(pk=agent.policy_id).update(max_steps=F("max_steps") + 1)
    return _submit(demo)


def test_an_edited_policy_is_in_the_next_snapshot_even_by_a_queryset_update(demo):
    before = _submit(demo)
    agent = Agent.objects.get(team=demo["team"], slug="support-refunds")
    # no signal, and updated_at unchanged: only the rows themselves tell
    Policy.objects.filter(pk=agent.policy_id).update(max_steps=before.policy.max_steps + 7,
                                                     approval_tools=["refund"])
    after = _submit(demo)
    assert after.policy.max_steps == before.policy.max_steps + 7
    assert after.policy.approval_tools == ["refund"]
    assert after.policy_snapshot == _fresh(agent)


def test_edited_models_and_rules_are_in_the_next_snapshot(demo):
    agent = Agent.objects.select_related("policy").get(team=demo["team"],
                                                       slug="support-refunds")
    _submit(demo)
    ModelProfile.objects.filter(name=agent.policy.small_model).update(
        input_per_mtok=Decimal("9.25"))
    priced = _submit(demo)
    assert priced.policy.models[agent.policy.small_model].input_per_mtok == Decimal("9.25")
    rule = Rule.objects.create(policy=agent.policy, name="passwords", action="escalate",
                               conditions=[{"field": "message", "op": "contains",
                                            "value": "password"}], question="?")
    assert [r.name for r in _submit(demo).policy.rules] == ["passwords"]
    Rule.objects.filter(pk=rule.pk).update(enabled=False)
    assert _submit(demo).policy.rules == []
    assert _submit(demo).policy_snapshot == _fresh(agent)


def test_a_disabled_or_moved_agent_is_refused_at_once(api, demo):
    assert api.post("/runs", submit_body()).status_code == 201
    Agent.objects.filter(team=demo["team"], slug="support-refunds").update(enabled=False)
    assert api.post("/runs", submit_body()).status_code == 404
    Agent.objects.filter(team=demo["team"], slug="support-refunds").update(
        enabled=True, team=demo["other_team"])
    assert api.post("/runs", submit_body()).status_code == 404


def test_an_edited_input_schema_is_checked_by_the_next_submission(api, demo):
    agent = Agent.objects.get(team=demo["team"], slug="support-refunds")
    Agent.objects.filter(pk=agent.pk).update(slug="helper", instructions="Help.",
                                             input_schema={})
    body = {"agent": "helper", "input": {"message": "hi"}}
    assert api.post("/runs", body).status_code == 201
    Agent.objects.filter(pk=agent.pk).update(input_schema={
        "type": "object", "required": ["order"],
        "properties": {"order": {"type": "integer"}}})
    response = api.post("/runs", body)
    assert response.status_code == 422, response.content
    assert api.post("/runs", {"agent": "helper", "input": {"order": 7}}).status_code == 201


def test_the_run_is_enqueued_once_its_row_is_committed(api, demo, monkeypatch):
    """Each enqueue looks for the run from another connection: it must be there."""
    seen = []

    def advance(run_id: int) -> None:
        found = []
        other = threading.Thread(target=lambda: (
            found.append(Run.objects.filter(pk=run_id).exists()), connections.close_all()))
        other.start()
        other.join()
        seen.append((run_id, found[0]))

    monkeypatch.setattr(enqueue, "advance_run", advance)
    created = [api.post("/runs", submit_body(f"Where is my order {n}?")).json()["id"]
               for n in (1001, 1002)]
    assert seen == [(run_id, True) for run_id in created]


def test_inside_a_transaction_the_run_is_enqueued_at_its_commit(demo, monkeypatch):
    from django.db import transaction

    sent: list[int] = []
    monkeypatch.setattr(enqueue, "advance_run", sent.append)
    with transaction.atomic():
        run = _submit(demo)
        assert sent == []
    assert sent == [run.pk]
    with pytest.raises(RuntimeError), transaction.atomic():
        _submit(demo, "Where is my order 1001?")
        raise RuntimeError
    assert sent == [run.pk] and Run.objects.count() == 1


def test_a_relaxed_input_schema_accepts_what_the_old_one_refused(api, demo):
    """A submission checked against what this process remembered of the agent is checked
    again against the rows when it fails: the schema may have changed since."""
    agent = Agent.objects.get(team=demo["team"], slug="support-refunds")
    Agent.objects.filter(pk=agent.pk).update(slug="helper", instructions="Help.",
                                             input_schema={
                                                 "type": "object", "required": ["order"],
                                                 "properties": {"order": {"type": "integer"}}})
    assert api.post("/runs", {"agent": "helper", "input": {"order": 7}}).status_code == 201
    Agent.objects.filter(pk=agent.pk).update(input_schema={})
    response = api.post("/runs", {"agent": "helper", "input": {"message": "hi"}})
    assert response.status_code == 201, response.content


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the guarded INSERT is Postgres's")
def test_a_known_agent_costs_one_statement_and_a_changed_one_is_read_again(demo):
    """On Postgres the run's INSERT carries the agent's fingerprint as its condition: one
    statement for a submission, and when the agent changed, that INSERT writes nothing and
    the agent is read again — one run and one audit row all the same."""
    from runs.models import AuditEvent

    _submit(demo)
    with CaptureQueriesContext(connection) as queries:
        run = _submit(demo)
    assert len(queries) == 1, [q["sql"][:80] for q in queries.captured_queries]
    assert "md5(" in queries[0]["sql"] and run.pk
    agent = Agent.objects.get(team=demo["team"], slug="support-refunds")
    Policy.objects.filter(pk=agent.policy_id).update(max_steps=F("max_steps") + 3)
    runs, audits = Run.objects.count(), AuditEvent.objects.filter(action="run.submitted").count()
    with CaptureQueriesContext(connection) as queries:
        after = _submit(demo)
    assert len(queries) > 2  # the guarded INSERT, the fingerprint, the agent, the snapshot…
    assert after.policy_snapshot == _fresh(agent)
    assert Run.objects.count() == runs + 1
    assert AuditEvent.objects.filter(action="run.submitted").count() == audits + 1
