"""Webhooks against a real local receiver: signed, retried with backoff, never lost."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from runs import callback_urls, maintenance, services, webhooks
from runs.models import Run, WebhookDelivery
from tests.api.conftest import (  # noqa: F401  (autouse fixtures)
    fast_password_hashing,
    hold_runs_unless_worker,
)
from tests.conftest import wait_for

from .helpers import open_escalation, submit, wait_status

SECRET = "whsec-test-0123456789"


class Receiver:
    """A tiny webhook receiver: records each request; answers with scripted status codes
    (then 200)."""

    def __init__(self, port: int = 0, codes: list[int] | None = None) -> None:
        self.requests: list[dict] = []
        self.codes = list(codes or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[str]:
        return [json.loads(r["body"])["event"] for r in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def local_receivers_allowed(settings):
    """The receivers here listen on 127.0.0.1, which production refuses (SSRF guard)."""
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    return settings


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.stop()


@pytest.fixture
def fast_retries(settings):
    settings.WEBHOOK_BACKOFF_BASE_SECONDS = 0.1
    settings.WEBHOOK_BACKOFF_MAX_SECONDS = 0.5
    settings.WEBHOOK_TIMEOUT_SECONDS = 2.0
    return settings


@pytest.fixture
def team_hook(demo, receiver):
    team = demo["team"]
    team.callback_url, team.webhook_secret = receiver.url, SECRET
    team.save()
    return team


def test_verify_signature_accepts_ours_and_rejects_tampering_and_replays():
    body = b'{"event":"run.succeeded"}'
    now = time.time()
    ts = str(int(now))
    sig = webhooks.sign(SECRET, ts, body)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert webhooks.verify_signature(SECRET, ts, body, sig, now=now)
    assert webhooks.verify_signature(SECRET, ts, body.decode(), sig, now=now)
    assert not webhooks.verify_signature(SECRET, ts, body + b" ", sig, now=now)
    assert not webhooks.verify_signature("other-secret", ts, body, sig, now=now)
    assert not webhooks.verify_signature(SECRET, str(int(now) - 1), body, sig, now=now)
    assert not webhooks.verify_signature(SECRET, ts, body, sig, now=now + 301)
    assert not webhooks.verify_signature(SECRET, "yesterday", body, sig, now=now)
    assert webhooks.verify_signature(SECRET, ts, body, sig, tolerance_s=600, now=now + 500)


@pytest.mark.usefixtures("celery_worker")
def test_success_is_posted_signed_to_the_runs_callback_url(demo, data_dir, receiver):
    demo["team"].webhook_secret = SECRET
    demo["team"].save()
    run = services.submit_run(team=demo["team"], agent_slug="support-refunds",
                              task_input={"message": "Where is my order 1077?"},
                              user_id=None, callback_url=receiver.url)
    wait_status(run, "succeeded")
    wait_for(lambda: receiver.requests, timeout=15)
    request = receiver.requests[0]
    headers, body = request["headers"], request["body"]
    assert webhooks.verify_signature(SECRET, headers["X-AgentDesk-Timestamp"], body,
                                     headers["X-AgentDesk-Signature"])
    payload = json.loads(body)
    assert payload["event"] == "run.succeeded" and payload["sent_at"]
    assert payload["run"]["id"] == run.pk and payload["run"]["status"] == "succeeded"
    assert "1077" in payload["run"]["answer"]
    # the receiver answered before the worker recorded the outcome: wait for the record
    wait_for(lambda: WebhookDelivery.objects.get(run=run).status == "delivered", timeout=15)
    delivery = WebhookDelivery.objects.get(run=run)
    assert delivery.status == "delivered" and delivery.attempts == 1
    assert headers["X-AgentDesk-Delivery"] == str(delivery.pk)


@pytest.mark.usefixtures("celery_worker")
def test_waiting_then_decided_posts_both_events_to_the_team_default(team_hook, data_dir,
                                                                    receiver, demo):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    wait_for(lambda: receiver.events() == ["run.waiting_human"], timeout=15)
    waiting = json.loads(receiver.requests[0]["body"])["run"]
    assert waiting["escalation_id"] == open_escalation(run).pk
    services.decide(escalation_id=open_escalation(run).pk, user=demo["operator"],
                    decision="approve")
    wait_status(run, "succeeded")
    wait_for(lambda: receiver.events() == ["run.waiting_human", "run.succeeded"], timeout=15)


@pytest.mark.usefixtures("celery_worker")
def test_a_receiver_answering_503_gets_it_on_a_later_attempt(team_hook, fast_retries, demo,
                                                             data_dir, receiver):
    receiver.codes = [503, 503]
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "succeeded")
    delivery = wait_for(lambda: WebhookDelivery.objects.filter(run=run,
                                                               status="delivered").first())
    assert delivery.attempts == 3 and delivery.last_status_code == 200
    assert receiver.events() == ["run.succeeded"] * 3
    ids = {r["headers"]["X-AgentDesk-Delivery"] for r in receiver.requests}
    assert ids == {str(delivery.pk)}  # one delivery id across retries: receivers dedupe


@pytest.mark.usefixtures("celery_worker")
def test_a_receiver_that_is_down_gets_it_once_it_is_back(demo, fast_retries, data_dir):
    fast_retries.WEBHOOK_MAX_ATTEMPTS = 100
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo["team"].callback_url = f"http://127.0.0.1:{port}/hook"
    demo["team"].save()
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "succeeded")
    wait_for(lambda: WebhookDelivery.objects.filter(run=run, attempts__gte=2).exists())
    assert WebhookDelivery.objects.get(run=run).status == "pending"
    back = Receiver(port=port)
    try:
        delivery = wait_for(lambda: WebhookDelivery.objects.filter(
            run=run, status="delivered").first(), timeout=20)
        assert delivery.attempts > 1
        assert back.events() == ["run.succeeded"]
    finally:
        back.stop()


@pytest.mark.usefixtures("celery_worker")
def test_gives_up_after_the_last_attempt(team_hook, fast_retries, demo, data_dir, receiver):
    fast_retries.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.codes = [500] * 10
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "succeeded")
    delivery = wait_for(lambda: WebhookDelivery.objects.filter(run=run,
                                                               status="failed").first())
    assert delivery.attempts == 3 and delivery.last_status_code == 500
    time.sleep(0.5)
    assert len(receiver.requests) == 3
    # an admin sends it again: one more try, and this time the receiver is fine
    receiver.codes = []
    webhooks.resend([delivery.pk])
    wait_for(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "delivered")


def test_the_periodic_retry_sends_deliveries_whose_message_was_lost(team_hook, receiver, demo,
                                                                    monkeypatch):
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    Run.objects.filter(pk=run.pk).update(status="succeeded")
    run.refresh_from_db()
    # the status change recorded the event, but its message never reached a worker
    monkeypatch.setattr(webhooks, "_enqueue", lambda *a, **k: None)
    from django.db import transaction

    with transaction.atomic():
        delivery = webhooks.record_status_change(run)
        assert webhooks.record_status_change(run) is None  # once per change
    monkeypatch.setattr(webhooks, "_enqueue", lambda pk, countdown=None: webhooks.attempt(pk))
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert webhooks.retry_due() == 1
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == "delivered"
    assert receiver.events() == ["run.succeeded"]
    assert webhooks.retry_due() == 0


@pytest.mark.usefixtures("celery_worker")
def test_cancel_and_expiry_post_aborted_and_failed(team_hook, receiver, demo, data_dir):
    first = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    second = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(first, "waiting_human")
    wait_status(second, "waiting_human")
    services.cancel_run(run_id=first.pk, user=demo["operator"])
    assert maintenance.expire_escalations(now=timezone.now() + timedelta(days=2)) == 1
    wait_for(lambda: sorted(receiver.events()) == sorted(
        ["run.waiting_human", "run.waiting_human", "run.aborted", "run.failed"]), timeout=15)
    by_event = {json.loads(r["body"])["event"]: json.loads(r["body"])["run"]
                for r in receiver.requests}
    assert by_event["run.aborted"]["id"] == first.pk
    assert by_event["run.failed"]["id"] == second.pk
    assert by_event["run.failed"]["reason"] == "human_timeout"


def _delivery_to(run: Run, url: str, seq: int = 0) -> WebhookDelivery:
    return WebhookDelivery.objects.create(run=run, event="run.succeeded", seq=seq, url=url,
                                          payload={"id": run.pk},
                                          next_attempt_at=timezone.now())


def test_delivery_to_a_refused_host_fails_at_once_without_a_request(demo, receiver,
                                                                    local_receivers_allowed):
    """DNS can change after submit: delivery checks again, records why, does not retry."""
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    port = receiver.server.server_port
    by_name = _delivery_to(run, f"http://localhost:{port}/hook")
    literal = _delivery_to(run, f"http://127.0.0.1:{port}/hook", seq=1)
    local_receivers_allowed.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    for delivery in (by_name, literal):
        assert webhooks.attempt(delivery.pk) is None  # no retry scheduled
        delivery.refresh_from_db()
        assert delivery.status == "failed" and delivery.attempts == 1
        assert delivery.next_attempt_at is None and delivery.last_status_code is None
        assert delivery.last_error.startswith("Refused: The callback host ")
        assert "loopback address" in delivery.last_error
    assert "localhost resolves to" in by_name.last_error
    assert receiver.requests == []


def test_delivery_goes_to_the_address_resolved_once_with_the_original_host(demo, receiver):
    """``localhost`` is looked up once; the request goes to a checked address (the next one
    if ::1 refuses: the receiver listens on 127.0.0.1 only) with ``Host: localhost:port``."""
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    port = receiver.server.server_port
    delivery = _delivery_to(run, f"http://localhost:{port}/hook")
    assert webhooks.attempt(delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == "delivered", delivery.last_error
    assert receiver.requests[0]["headers"]["Host"] == f"localhost:{port}"


def test_destinations_pin_each_resolved_address(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    targets = callback_urls.destinations("https://user:pw@localhost:8443/hook?x=1")
    urls = {t.url for t in targets}
    assert urls <= {"https://user:pw@127.0.0.1:8443/hook?x=1",
                    "https://user:pw@[::1]:8443/hook?x=1"} and urls
    assert all(t.headers == {"Host": "localhost:8443"} for t in targets)
    assert all(t.extensions == {"sni_hostname": "localhost"} for t in targets)
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    with pytest.raises(callback_urls.RefusedURL):
        callback_urls.destinations("https://localhost:8443/hook")
