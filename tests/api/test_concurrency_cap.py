"""Team.max_running_runs: submissions are never refused for the cap; runs wait queued and
start as capacity frees up, and none is dropped."""

from __future__ import annotations

import threading
import time

import pytest

from runs import capacity, lifecycle
from runs.models import Run
from tests.conftest import wait_for

from .conftest import submit_body


def test_a_queued_run_waits_while_its_team_is_at_the_cap(api, demo, monkeypatch):
    demo["team"].max_running_runs = 1
    demo["team"].save()
    first = api.post("/runs", submit_body()).json()["id"]
    second = api.post("/runs", submit_body("Where is my order 1001?")).json()["id"]
    Run.objects.filter(pk=first).update(status="running", lease_owner="someone-else")
    assert lifecycle.start(second, "me") is None
    assert Run.objects.get(pk=second).status == "queued"
    started = []
    monkeypatch.setattr("runs.enqueue.advance_run", lambda run_id: started.append(run_id))
    assert capacity.start_queued_runs(demo["team"].pk) == 0  # still full
    Run.objects.filter(pk=first).update(status="succeeded", lease_owner="")
    assert capacity.start_queued_runs(demo["team"].pk) == 1 and started == [second]
    assert lifecycle.start(second, "me") is not None


@pytest.mark.usefixtures("celery_worker")
def test_cap_of_two_runs_all_eight_never_more_than_two_at_once(api, demo, data_dir):
    demo["team"].max_running_runs = 2
    demo["team"].save()
    peak, stop = [0], threading.Event()

    def watch():
        from django.db import connection

        try:
            while not stop.is_set():
                running = Run.objects.filter(team=demo["team"], status="running").count()
                peak[0] = max(peak[0], running)
                time.sleep(0.005)
        finally:
            connection.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    messages = ["Where is my order 1077?", "Where is my order 1001?",
                "I want a refund for order 1001", "Where is my order 1042?"]
    ids = []
    for i in range(8):
        response = api.post("/runs", submit_body(messages[i % len(messages)]))
        assert response.status_code == 201  # never refused for the cap
        ids.append(response.json()["id"])
    try:
        wait_for(lambda: Run.objects.filter(pk__in=ids, status="succeeded").count() == 8,
                 timeout=60)
    finally:
        stop.set()
        watcher.join(5)
    assert 1 <= peak[0] <= 2, peak
