"""POST /runs: every status code it can answer, and idempotent retries (also concurrent)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connections

from runs.models import AuditEvent, Run

from .conftest import ApiClient, submit_body


def test_submit_creates_a_queued_run(api, demo):
    response = api.post("/runs", submit_body())
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued" and body["agent"] == "support-refunds"
    assert body["input"] == {"message": "Where is my order 1077?"}
    assert set(body["usage"]) >= {"steps", "tokens_in", "tokens_out", "cost_usd"}
    run = Run.objects.get(pk=body["id"])
    assert run.team == demo["team"] and run.api_key is not None and run.created_by is None
    assert AuditEvent.objects.filter(action="run.submitted", target_id=str(run.pk),
                                     api_key=run.api_key).exists()


def test_same_idempotency_key_and_body_returns_the_same_run(api):
    first = api.post("/runs", submit_body(idempotency_key="order-1077"))
    again = api.post("/runs", submit_body(idempotency_key="order-1077"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Run.objects.count() == 1


def test_idempotency_key_from_the_header(api):
    first = api.post("/runs", submit_body(), headers={"Idempotency-Key": "hdr-1"})
    again = api.post("/runs", submit_body(), headers={"Idempotency-Key": "hdr-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["idempotency_key"] == "hdr-1"


def test_same_key_different_body_is_a_conflict(api):
    api.post("/runs", submit_body(idempotency_key="k1"))
    response = api.post("/runs", submit_body("Where is my order 1001?", idempotency_key="k1"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert Run.objects.count() == 1


def test_keys_are_per_team(api, make_key, demo):
    from runs.models import Agent

    Agent.objects.create(team=demo["other_team"], slug="support-refunds", name="refunds",
                         policy=Agent.objects.get(team=demo["team"]).policy)
    other = ApiClient(make_key(team=demo["other_team"]))
    ours = api.post("/runs", submit_body(idempotency_key="shared"))
    theirs = other.post("/runs", submit_body(idempotency_key="shared"))
    assert (ours.status_code, theirs.status_code) == (201, 201)
    assert ours.json()["id"] != theirs.json()["id"]


def test_twenty_concurrent_identical_submissions_make_one_run(make_key):
    key = make_key()
    barrier = threading.Barrier(20)

    def submit(_):
        client = ApiClient(key)
        barrier.wait()
        try:
            response = client.post("/runs", submit_body(idempotency_key="race-1"))
            return response.status_code, response.json().get("id")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(submit, range(20)))
    ids = {run_id for _, run_id in results}
    codes = sorted(code for code, _ in results)
    assert Run.objects.filter(idempotency_key="race-1").count() == 1
    assert ids == {Run.objects.get(idempotency_key="race-1").pk}
    assert codes.count(201) == 1 and codes.count(200) == 19, codes


def test_malformed_json_is_400(api):
    response = api.post("/runs", raw='{"agent": "support-refunds", "input": ')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_unknown_agent_is_404(api):
    response = api.post("/runs", {"agent": "nope", "input": {"message": "hi"}})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_input_checked_against_the_agent_schema_is_422(api):
    response = api.post("/runs", {"agent": "support-refunds", "input": {"msg": "hi"}})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and "input.message" in error["fields"]
    assert Run.objects.count() == 0


def test_request_shape_errors_are_422_json(api):
    for body in ({"agent": "support-refunds"}, {"agent": "support-refunds", "input": "text"},
                 submit_body(callback_url="ftp://example.com/x"), [1, 2]):
        response = api.post("/runs", body)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "invalid_request"
        assert response.json()["error"]["fields"]


def test_declared_body_over_the_limit_is_413_before_parsing(api, settings):
    settings.API_MAX_BODY_BYTES = 1000
    response = api.client.post("/api/v1/runs", data="x", content_type="application/json",
                               headers={**api.headers(), "Content-Length": "5000"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_actual_body_over_the_limit_is_413(api, settings):
    settings.API_MAX_BODY_BYTES = 1000
    response = api.post("/runs", submit_body("x" * 2000))
    assert response.status_code == 413


def test_input_over_max_input_bytes_is_413(api, settings):
    settings.MAX_INPUT_BYTES = 100
    response = api.post("/runs", submit_body("y" * 300))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert Run.objects.count() == 0


def test_callback_url_is_stored(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True  # a receiver on this machine (tests, make run)
    response = api.post("/runs", submit_body(callback_url="http://127.0.0.1:9/hook"))
    assert response.status_code == 201
    assert Run.objects.get(pk=response.json()["id"]).callback_url == "http://127.0.0.1:9/hook"
