"""Every way a run ends goes through ``runs.lifecycle``, and each one writes everything an
ending owes: the conditional status change, the closing step and step counter, the webhook
outbox row, the audit event, closed escalations and the live event on the run's socket.

The five paths — the engine ending the run, cancel, an abort decision, the human-wait
deadline, a crashing worker — start from the same run waiting for an approval, with a
browser-like websocket on its page, and end through the real worker, services and beat task.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.utils import timezone

from runs import maintenance, services
from runs.models import AuditEvent, Escalation, Run, WebhookDelivery

from .helpers import open_escalation, submit, wait_status
from .test_live import bind_here, connect, cookie_for, receive_until, unbind_loop  # noqa: F401

pytestmark = pytest.mark.usefixtures("celery_worker", "data_dir")


def _approve(run, demo):
    services.decide(escalation_id=open_escalation(run).pk, user=demo["operator"],
                    decision="approve")


def _cancel(run, demo):
    services.cancel_run(run_id=run.pk, user=demo["operator"])


def _abort(run, demo):
    services.decide(escalation_id=open_escalation(run).pk, user=demo["operator"],
                    decision="abort")


def _deadline(run, demo):
    assert maintenance.expire_escalations(now=timezone.now() + timedelta(days=2)) == 1


def _crash(run, demo):
    _approve(run, demo)  # the resumed slice hits the broken engine


# path → (what ends it, status, reason, closing step (kind, name), audit action)
PATHS = {
    "engine end": (_approve, "succeeded", "", ("final", "succeeded"), "run.succeeded"),
    "cancel": (_cancel, "aborted", "aborted_by_operator", ("human", "abort"), "run.cancelled"),
    "abort decision": (_abort, "aborted", "aborted_by_operator", ("human", "abort"),
                       "run.aborted"),
    "human-wait expiry": (_deadline, "failed", "human_timeout", ("final", "failed"),
                          "run.expired"),
    "crash": (_crash, "failed", "internal_error", ("final", "failed"), "run.crashed"),
}


@pytest.mark.parametrize("path", PATHS)
def test_every_ending_writes_all_it_owes(demo, monkeypatch, path):
    end, status, reason, (kind, name), action = PATHS[path]
    team = demo["team"]
    team.callback_url = "http://127.0.0.1:9/hooks/agentdesk"  # the outbox row is what counts
    team.save(update_fields=["callback_url"])
    run = submit(team, demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    if path == "crash":
        from agentdesk.runtime.loop import Engine

        def broken(self, state, slice_seconds=30.0):
            raise RuntimeError("bug in the engine")

        monkeypatch.setattr(Engine, "advance", broken)
    cookie = cookie_for(demo["operator"])

    async def watch_the_run_page_while_it_ends() -> str:
        await bind_here()
        comm = connect(f"/ws/runs/{run.pk}/", cookie=cookie)
        assert (await comm.connect())[0]
        await database_sync_to_async(end)(run, demo)
        html = await receive_until(comm, f'data-testid="run-status">{status}<')
        await comm.disconnect()
        return html

    html = async_to_sync(watch_the_run_page_while_it_ends)()
    run = wait_status(run, status)

    assert (run.status, run.reason) == (status, reason)
    assert run.finished_at is not None and not run.lease_owner
    steps = list(run.steps.order_by("index"))
    assert [s.index for s in steps] == list(range(run.step_count))  # counter = trace
    assert (steps[-1].kind, steps[-1].name) == (kind, name)
    assert WebhookDelivery.objects.filter(run=run, event=f"run.{status}").count() == 1
    audit = AuditEvent.objects.get(action=action, target_type="run", target_id=str(run.pk))
    assert audit.detail["status"] == status and audit.detail["reason"] == reason
    assert not Escalation.objects.filter(run=run, status=Escalation.Status.OPEN).exists()
    assert 'id="run-summary"' in html
    if reason:
        assert f"reason-{reason}" in html
    assert Run.objects.filter(pk=run.pk, status=status).exists()
