"""Reading runs (cursor pages, filters, steps) and cancelling them — including a running
run, which stops at its next checkpoint because the lease-fenced commit fails."""

from __future__ import annotations

import time

import pytest

from runs import services
from runs.models import Escalation, Run, Step
from tests.conftest import wait_for
from tests.integration.helpers import open_escalation, wait_status

from .conftest import submit_body


def make_runs(demo, n: int) -> list[Run]:
    return [services.submit_run(team=demo["team"], agent_slug="support-refunds",
                                task_input={"message": f"Where is my order {1000 + i}?"},
                                user_id=None) for i in range(n)]


def test_cursor_pages_walk_every_run_once_newest_first(api, demo):
    made = make_runs(demo, 5)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/runs", **params).json()
        seen += [r["id"] for r in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted((r.pk for r in made), reverse=True)
    assert pages == 3


def test_filters_by_status_and_agent(api, demo):
    first, second = make_runs(demo, 2)
    Run.objects.filter(pk=first.pk).update(status="failed", reason="tool_failed")
    failed = api.get("/runs", status="failed").json()["items"]
    assert [r["id"] for r in failed] == [first.pk] and failed[0]["reason"] == "tool_failed"
    assert len(api.get("/runs", agent="support-refunds").json()["items"]) == 2
    assert api.get("/runs", agent="other").json()["items"] == []
    assert api.get("/runs", status="bogus").status_code == 422


def test_bad_cursor_and_limit_are_4xx(api, demo):
    assert api.get("/runs", cursor="!!!").status_code == 400
    assert api.get("/runs", cursor="aWQ6eA").json()["error"]["code"] == "invalid_cursor"
    assert api.get("/runs", limit=0).status_code == 422
    assert api.get("/runs", limit=101).status_code == 422


def test_get_run_with_steps(api, demo):
    (run,) = make_runs(demo, 1)
    Step.objects.create(run=run, index=0, kind="retrieval", name="knowledge")
    plain = api.get(f"/runs/{run.pk}").json()
    assert plain["id"] == run.pk and plain.get("steps") is None
    full = api.get(f"/runs/{run.pk}", include="steps").json()
    assert [s["kind"] for s in full["steps"]] == ["retrieval"]
    assert api.get("/runs/999999").status_code == 404
    assert api.get("/runs/abc").status_code == 404
    assert api.get(f"/runs/{run.pk}", include="everything").status_code == 422


def test_cancel_a_queued_run(api, demo):
    (run,) = make_runs(demo, 1)
    response = api.post(f"/runs/{run.pk}/cancel")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["reason"]) == ("aborted",
                                                                       "aborted_by_operator")
    again = api.post(f"/runs/{run.pk}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "run_finished"


def test_unknown_paths_and_methods_are_json(api):
    missing = api.get("/nothing/here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = api.client.delete("/api/v1/runs", headers=api.headers())
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in wrong["Allow"]


@pytest.mark.usefixtures("celery_worker")
def test_cancel_a_running_run_stops_it_at_the_next_checkpoint(api, demo, data_dir,
                                                              monkeypatch):
    monkeypatch.setenv("AGENTDESK_TOOL_DELAY_9998", "2")
    run_id = api.post("/runs", submit_body("Where is my order 9998?")).json()["id"]
    run = Run.objects.get(pk=run_id)
    # the model's step proposing the lookup is committed, then the lookup takes 2 s: cancel
    # while the worker is inside it
    wait_for(lambda: run.steps.filter(kind="model").exists(), timeout=20)
    proposed = time.monotonic()
    assert Run.objects.get(pk=run_id).status == "running"
    response = api.post(f"/runs/{run_id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "aborted"
    steps_at_cancel = list(run.steps.values_list("index", "kind"))
    # the tool finishes, the worker's next commit no longer matches (status != running)
    time.sleep(max(0.0, proposed + 2.5 - time.monotonic()))
    run.refresh_from_db()
    assert (run.status, run.reason) == ("aborted", "aborted_by_operator")
    assert list(run.steps.values_list("index", "kind")) == steps_at_cancel
    assert steps_at_cancel[-1][1] == "human"  # the abort is the last step; nothing after it
    # a read-only call's row comes with its step's checkpoint, which the fence refused
    assert not run.tool_calls.filter(tool="lookup_order").exists()


@pytest.mark.usefixtures("celery_worker")
def test_cancel_a_waiting_run_closes_its_escalation(api, demo, data_dir):
    run_id = api.post("/runs", submit_body("I want a refund for order 1042")).json()["id"]
    run = wait_status(Run.objects.get(pk=run_id), "waiting_human")
    esc = open_escalation(run)
    assert api.get(f"/runs/{run_id}").json()["escalation_id"] == esc.pk
    assert api.post(f"/runs/{run_id}/cancel").json()["status"] == "aborted"
    esc.refresh_from_db()
    assert esc.status == Escalation.Status.CANCELLED
    late = api.post(f"/escalations/{esc.pk}/resolve", {"action": "approve"})
    assert late.status_code == 409
