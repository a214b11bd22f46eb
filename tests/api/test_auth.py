"""Keys: bearer auth, revocation, scopes, rate limits, last use, team isolation, and the
``create_api_key`` command."""

from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from runs import services
from runs.api_keys import create_api_key, revoke_api_key
from runs.models import ApiKey, Escalation, Run

from .conftest import ApiClient, submit_body


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Token abc", "Basic eDp5"])
def test_missing_or_invalid_key_is_401_json(demo, header):
    client = ApiClient(None)
    headers = {"Authorization": header} if header else {}
    response = client.get("/runs", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoked_key_is_401(demo):
    new = create_api_key(team=demo["team"], name="old")
    client = ApiClient(new.raw)
    assert client.get("/runs").status_code == 200
    assert revoke_api_key(new.key.pk) is True
    assert revoke_api_key(new.key.pk) is False  # idempotent
    response = client.get("/runs")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("scopes", "method", "path", "body"),
    [
        ("read", "post", "/runs", submit_body()),
        ("submit", "get", "/runs", None),
        ("submit", "get", "/agents", None),
        ("read", "post", "/runs/1/cancel", {}),
        ("read,submit", "post", "/escalations/1/resolve", {"action": "approve"}),
    ],
)
def test_wrong_scope_is_403(make_key, scopes, method, path, body):
    client = ApiClient(make_key(scopes=scopes))
    response = client.post(path, body) if method == "post" else client.get(path)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


def test_scopes_allow_their_endpoints(make_key):
    assert ApiClient(make_key(scopes="submit")).post("/runs", submit_body()).status_code == 201
    assert ApiClient(make_key(scopes="read")).get("/runs").status_code == 200


def test_rate_limit_is_429_with_retry_after(make_key):
    client = ApiClient(make_key(rate=3))
    codes = [client.get("/runs").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = client.get("/runs")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    # another key has its own window
    assert ApiClient(make_key(rate=3)).get("/runs").status_code == 200


def test_last_used_at_is_written_at_most_once_a_minute(demo):
    new = create_api_key(team=demo["team"], name="touch")
    client = ApiClient(new.raw)
    client.get("/runs")
    first = ApiKey.objects.get(pk=new.key.pk).last_used_at
    assert first is not None
    client.get("/runs")
    assert ApiKey.objects.get(pk=new.key.pk).last_used_at == first


def test_another_teams_rows_are_not_found(api, make_key, demo):
    run = services.submit_run(team=demo["team"], agent_slug="support-refunds",
                              task_input={"message": "Where is my order 1077?"}, user_id=None)
    esc = Escalation.objects.create(run=run, team=demo["team"], step_index=0,
                                    reason="low_confidence", question="?")
    other = ApiClient(make_key(team=demo["other_team"]))
    assert other.get(f"/runs/{run.pk}").status_code == 404
    assert other.post(f"/runs/{run.pk}/cancel").status_code == 404
    assert other.post(f"/escalations/{esc.pk}/resolve", {"action": "abort"}).status_code == 404
    assert other.get("/runs").json()["items"] == []
    assert other.get("/escalations").json()["items"] == []
    assert other.post("/runs", submit_body()).status_code == 404  # not their agent
    assert api.get(f"/runs/{run.pk}").status_code == 200
    assert Run.objects.get(pk=run.pk).status == "queued"


def test_create_api_key_command_prints_the_key_once_and_stores_a_hash(demo):
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "--team", "demo", "--name", "ci", "--scopes", "read,submit",
                 stdout=out, stderr=err)
    raw = out.getvalue().strip()
    key = ApiKey.objects.get(name="ci")
    assert raw.startswith("adk_") and len(raw) > 40
    assert key.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    assert key.prefix == raw[:8] and raw not in str(ApiKey.objects.values())
    assert key.scopes == ["read", "submit"]
    assert "not shown again" in err.getvalue()
    assert ApiClient(raw).get("/runs").status_code == 200


def test_create_api_key_command_refuses_bad_arguments(demo):
    with pytest.raises(CommandError):
        call_command("create_api_key", "--team", "nope", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError):
        call_command("create_api_key", "--team", "demo", "--scopes", "admin",
                     stdout=StringIO(), stderr=StringIO())
