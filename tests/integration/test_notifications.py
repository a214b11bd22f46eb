"""Notifications (issue 17): per-team targets told about new escalations, SLA warnings,
failed runs and the team budget — through apprise to a local HTTP receiver, and through
Django's mail for ``email:`` targets; an outbox written with the change, rate-limited into
digests, retried with backoff, with secrets kept out of logs, errors and admin pages."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from runs import maintenance, notifications, notifier
from runs.models import (
    AuditEvent,
    Escalation,
    NotificationDelivery,
    NotificationTarget,
    Policy,
    TeamDailySpend,
)
from tests.api.conftest import (  # noqa: F401  (autouse fixtures)
    fast_password_hashing,
    hold_runs_unless_worker,
)
from tests.conftest import wait_for

from .helpers import open_escalation, submit, wait_status
from .notification_receiver import NotificationReceiver

PUBLIC = "https://desk.example.com"
SECRET = "tok3n-Zq8v1LmX4pRa"


@pytest.fixture(autouse=True)
def notify_settings(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True  # the receiver listens on 127.0.0.1
    settings.AGENTDESK_PUBLIC_URL = PUBLIC
    settings.NOTIFICATION_BATCH_SECONDS = 0
    settings.NOTIFICATION_TIMEOUT_SECONDS = 5
    settings.WEBHOOK_BACKOFF_BASE_SECONDS = 0.1
    settings.WEBHOOK_BACKOFF_MAX_SECONDS = 0.5
    return settings


@pytest.fixture
def receiver() -> Iterator[NotificationReceiver]:
    rec = NotificationReceiver()
    yield rec
    rec.stop()


@pytest.fixture
def by_hand(monkeypatch):
    """No worker: rows wait until the test sends them with ``notifier.send_due``."""
    monkeypatch.setattr(notifications, "wake", lambda target_id: None)


def target(team, destination: str, **fields) -> NotificationTarget:
    return NotificationTarget.objects.create(team=team, name=fields.pop("name", "ops"),
                                             destination=destination, **fields)


def escalation(team, user, *, reason="approval_required", priority=10, window_s=600,
               opened_ago_s=0, question="Refund 40.00 EUR for order 1042?") -> Escalation:
    run = submit(team, user, "I want a refund for order 1042")
    now = timezone.now()
    esc = Escalation.objects.create(
        run=run, team=team, step_index=1, reason=reason, question=question,
        proposed_tool="issue_refund", proposed_args={"order_id": "1042", "amount": 40},
        confidence=0.62, priority=priority)
    opened = now - timedelta(seconds=opened_ago_s)
    Escalation.objects.filter(pk=esc.pk).update(created_at=opened,
                                                deadline_at=opened + timedelta(seconds=window_s))
    return Escalation.objects.select_related("run", "run__agent", "run__team").get(pk=esc.pk)


def opened(esc: Escalation) -> list[NotificationDelivery]:
    with transaction.atomic():
        return notifications.escalation_opened(esc, esc.run)


# -- the whole path: a run pauses, the receiver hears of it -------------------------------------


@pytest.mark.usefixtures("celery_worker", "data_dir")
def test_a_new_escalation_reaches_a_json_receiver_and_a_mailbox_with_a_deep_link(
        demo, receiver, mailoutbox):
    team = demo["team"]
    target(team, receiver.url(), name="chat")
    target(team, "email:oncall@example.com, lead@example.com", name="mail", min_priority=10)
    target(team, receiver.url(path="failures"), name="failures only", events=["run.failed"])
    run = submit(team, demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    link = f"{PUBLIC}/escalations/{esc.pk}/"

    wait_for(lambda: receiver.requests, timeout=15)
    request = receiver.requests[0]
    assert request["path"] == "/notify"  # never to the failures-only target
    body = request["body"]
    assert body["title"] == f"[AgentDesk] Needs a human: approval required (escalation #{esc.pk})"
    assert body["type"] == "info"
    assert link in body["message"]
    assert esc.question in body["message"] and "issue_refund(" in body["message"]

    mail = wait_for(lambda: mailoutbox, timeout=15)[0]
    assert mail.subject == body["title"]
    assert mail.to == ["oncall@example.com", "lead@example.com"]
    assert link in mail.body
    rows = NotificationDelivery.objects.filter(escalation=esc)
    wait_for(lambda: sorted(rows.values_list("target__name", "status")) == [
        ("chat", "delivered"), ("mail", "delivered")], timeout=15)  # recorded after sending
    assert rows.first().run_id == run.pk
    if os.environ.get("AGENTDESK_SCREENSHOTS"):  # what the receivers got, for the docs
        shots = Path(os.environ["AGENTDESK_SCREENSHOTS"])
        shots.mkdir(parents=True, exist_ok=True)
        (shots / "notification-received.json").write_text(json.dumps(
            {"json": body, "email": {"subject": mail.subject, "to": mail.to,
                                     "from": mail.from_email, "body": mail.body}}, indent=2))


def test_only_targets_whose_priority_threshold_the_escalation_reaches(demo, by_hand):
    urgent_only = target(demo["team"], "email:a@example.com", name="urgent", min_priority=10)
    bounds = target(demo["team"], "email:b@example.com", name="bounds", min_priority=20)
    everything = target(demo["team"], "email:c@example.com", name="all")
    low = escalation(demo["team"], demo["operator"], reason="low_confidence", priority=30)
    bound = escalation(demo["team"], demo["operator"], reason="step_limit", priority=20)
    assert [r.target for r in opened(low)] == [everything]
    assert sorted(r.target.name for r in opened(bound)) == ["all", "bounds"]
    assert opened(bound) == []  # once per escalation and target
    assert urgent_only.deliveries.count() == 0 and bounds.deliveries.count() == 1
    other = target(demo["other_team"], "email:x@example.com", name="other team")
    assert other.deliveries.count() == 0  # no data crosses teams


@pytest.mark.usefixtures("celery_worker", "data_dir")
def test_a_run_that_fails_is_mailed_with_a_link_to_the_run(demo, mailoutbox):
    target(demo["team"], "email:oncall@example.com", events=["run.failed"])
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    assert maintenance.expire_escalations(now=timezone.now() + timedelta(days=2)) == 1
    run.refresh_from_db()
    assert (run.status, run.reason) == ("failed", "human_timeout")
    mail = wait_for(lambda: mailoutbox, timeout=15)[0]
    assert mail.subject == f"[AgentDesk] Run #{run.pk} failed: human timeout"
    assert f"{PUBLIC}/runs/{run.pk}/" in mail.body
    row = wait_for(lambda: NotificationDelivery.objects.filter(run=run, status="delivered")
                   .first(), timeout=15)
    assert row.event == "run.failed"


@pytest.mark.usefixtures("celery_worker", "data_dir")
def test_a_run_stopped_by_the_team_budget_says_the_budget_is_used_up(demo, receiver):
    team = demo["team"]
    team.daily_budget_usd = Decimal("0")
    team.save()
    Policy.objects.update(on_bound="escalate")
    target(team, receiver.url(), events=["budget.100"])
    run = submit(team, demo["operator"], "Where is my order 1077?")
    wait_status(run, "waiting_human")
    assert open_escalation(run).reason == "team_budget"
    wait_for(lambda: receiver.requests, timeout=15)
    body = receiver.requests[0]["body"]
    assert body["title"] == f"[AgentDesk] {team.name}: today's budget used up"
    assert body["type"] == "failure"
    assert f"Run #{run.pk} was stopped by the team budget" in body["message"]


# -- the periodic checks --------------------------------------------------------------------------


def test_sla_warnings_at_half_and_nine_tenths_of_the_time_to_decide(demo, receiver, by_hand):
    chat = target(demo["team"], receiver.url(), events=["escalation.sla_50",
                                                       "escalation.sla_90"])
    esc = escalation(demo["team"], demo["operator"], window_s=600)
    t0 = esc.created_at
    assert maintenance.notify_thresholds(now=t0 + timedelta(seconds=290)) == 0
    assert maintenance.notify_thresholds(now=t0 + timedelta(seconds=310)) == 1
    assert maintenance.notify_thresholds(now=t0 + timedelta(seconds=400)) == 0  # once
    notifier.send_due(chat.pk)
    assert maintenance.notify_thresholds(now=t0 + timedelta(seconds=545)) == 1
    notifier.send_due(chat.pk)
    assert maintenance.notify_thresholds(now=t0 + timedelta(seconds=590)) == 0
    assert receiver.titles() == [
        f"[AgentDesk] 50% of the time to decide is gone: escalation #{esc.pk}",
        f"[AgentDesk] 90% of the time to decide is gone: escalation #{esc.pk}"]
    assert [r["body"]["type"] for r in receiver.requests] == ["warning", "warning"]
    assert f"{PUBLIC}/escalations/{esc.pk}/" in receiver.requests[1]["body"]["message"]
    assert "Then the run fails (human_timeout)" in receiver.requests[1]["body"]["message"]


def test_an_escalation_first_seen_past_90_percent_skips_the_50_warning(demo, by_hand):
    target(demo["team"], "email:a@example.com")
    late = escalation(demo["team"], demo["operator"], window_s=100, opened_ago_s=95)
    decided = escalation(demo["team"], demo["operator"], window_s=100, opened_ago_s=60)
    Escalation.objects.filter(pk=decided.pk).update(status="decided")
    no_deadline = escalation(demo["team"], demo["operator"])
    Escalation.objects.filter(pk=no_deadline.pk).update(deadline_at=None)
    assert maintenance.notify_thresholds() == 1
    assert list(NotificationDelivery.objects.values_list("event", "escalation")) == [
        ("escalation.sla_90", late.pk)]


def test_team_budget_warnings_at_80_and_100_percent_and_again_after_an_extension(
        demo, receiver, by_hand):
    team = demo["team"]
    team.daily_budget_usd = Decimal("1.00")
    team.save()
    chat = target(team, receiver.url(), events=["budget.80", "budget.100"])
    day = TeamDailySpend.objects.create(team=team, day=timezone.now().date(),
                                        spent_usd=Decimal("0.79"))
    assert notifications.check_budgets() == 0
    TeamDailySpend.objects.filter(pk=day.pk).update(spent_usd=Decimal("0.80"))
    assert notifications.check_budgets() == 1
    assert notifications.check_budgets() == 0  # once per threshold and day
    TeamDailySpend.objects.filter(pk=day.pk).update(spent_usd=Decimal("1.00"))
    assert notifications.check_budgets() == 1
    # a team admin adds 1 USD for today: a new total, whose thresholds count anew
    TeamDailySpend.objects.filter(pk=day.pk).update(extra_usd=Decimal("1.00"))
    assert notifications.check_budgets() == 0
    TeamDailySpend.objects.filter(pk=day.pk).update(spent_usd=Decimal("1.60"))
    assert notifications.check_budgets() == 1
    notifier.send_due(chat.pk)
    titles = [r["title"] for r in NotificationDelivery.objects.order_by("pk").values("title")]
    assert titles == [f"{team.name}: today's budget 80% used",
                      f"{team.name}: today's budget used up",
                      f"{team.name}: today's budget 80% used"]
    assert len(receiver.requests) == 3  # they fit in the window: one message each
    assert "Spent 1.6000 of 2.0000 USD" in NotificationDelivery.objects.last().body


# -- rate limit, digests, retries ----------------------------------------------------------------


def test_at_most_n_messages_a_minute_per_target_the_rest_as_one_digest(
        demo, receiver, by_hand, settings):
    settings.NOTIFICATION_RATE_PER_MINUTE = 3
    chat = target(demo["team"], receiver.url())
    first = [escalation(demo["team"], demo["operator"]) for _ in range(2)]
    for esc in first:
        opened(esc)
    assert notifier.send_due(chat.pk) is None
    assert len(receiver.requests) == 2  # fit in the window: one message each

    burst = [escalation(demo["team"], demo["operator"]) for _ in range(5)]
    for esc in burst:
        opened(esc)
    notifier.send_due(chat.pk)
    assert len(receiver.requests) == 3  # 5 due, 1 left in the window: one digest
    digest = receiver.requests[2]["body"]
    assert digest["title"] == f"[AgentDesk] 5 notifications for {demo['team'].name}"
    for esc in burst:
        assert f"{PUBLIC}/escalations/{esc.pk}/" in digest["message"]
    rows = NotificationDelivery.objects.filter(escalation__in=burst)
    assert {r.status for r in rows} == {"delivered"} and all(r.in_digest for r in rows)
    assert len({r.message_id for r in rows}) == 1

    late = [escalation(demo["team"], demo["operator"]) for _ in range(2)]
    for esc in late:
        opened(esc)
    wait = notifier.send_due(chat.pk)
    assert len(receiver.requests) == 3  # the window is used up: they wait for the next one
    assert wait is not None and 50 < wait <= 60
    NotificationTarget.objects.filter(pk=chat.pk).update(
        window_started_at=timezone.now() - timedelta(seconds=61))
    assert notifier.send_due(chat.pk) is None
    assert len(receiver.requests) == 5


def test_a_failed_message_is_retried_with_backoff_then_given_up(demo, by_hand, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    rec = NotificationReceiver(codes=[500, 503])
    try:
        chat = target(demo["team"], rec.url())
        opened(escalation(demo["team"], demo["operator"]))
        wait = notifier.send_due(chat.pk)
        row = NotificationDelivery.objects.get()
        assert (row.status, row.attempts) == ("pending", 1) and 0 < wait <= 0.1
        assert "500" in row.last_error
        notifier.send_due(chat.pk)  # not due yet: nothing is sent
        assert len(rec.requests) == 1
        time.sleep(wait + 0.05)
        wait = notifier.send_due(chat.pk)  # the second attempt: 503, backoff doubles
        assert NotificationDelivery.objects.get().attempts == 2 and 0.1 < wait <= 0.2
        time.sleep(wait + 0.05)
        assert notifier.send_due(chat.pk) is None
        row.refresh_from_db()
        assert (row.status, row.attempts, row.last_error) == ("delivered", 3, "")
        assert len(rec.requests) == 3
    finally:
        rec.stop()
    # a receiver that never answers: failed for good after the last attempt
    NotificationTarget.objects.filter(pk=chat.pk).update(destination="json://127.0.0.1:9/x")
    opened(escalation(demo["team"], demo["operator"]))
    for _ in range(3):  # each attempt due at once, in a window of its own
        NotificationDelivery.objects.filter(status="pending").update(
            next_attempt_at=timezone.now())
        NotificationTarget.objects.filter(pk=chat.pk).update(window_started_at=None)
        notifier.send_due(chat.pk)
    gone = NotificationDelivery.objects.get(status="failed")
    assert gone.attempts == 3 and gone.next_attempt_at is None
    assert "Connection error" in gone.last_error
    assert notifier.resend([gone.pk]) == 1  # admin: one more try
    assert NotificationDelivery.objects.get(pk=gone.pk).status == "pending"


def test_the_periodic_retry_sends_what_a_lost_message_left_behind(demo, receiver, by_hand,
                                                                  monkeypatch):
    chat = target(demo["team"], receiver.url())
    opened(escalation(demo["team"], demo["operator"]))
    monkeypatch.setattr(notifier, "_wake", lambda target_id, countdown=None:
                        notifier.send_due(target_id))
    assert notifier.retry_due() == 1
    assert len(receiver.requests) == 1
    assert notifier.retry_due() == 0
    assert NotificationDelivery.objects.get().status == "delivered"
    assert chat.deliveries.count() == 1


def test_form_targets_and_a_disabled_target(demo, receiver, by_hand):
    form = target(demo["team"], receiver.url(scheme="form"))
    opened(escalation(demo["team"], demo["operator"]))
    notifier.send_due(form.pk)
    assert receiver.requests[0]["headers"]["Content-Type"].startswith(
        "application/x-www-form-urlencoded")
    assert receiver.requests[0]["body"]["title"].startswith("[AgentDesk] Needs a human")
    opened(escalation(demo["team"], demo["operator"]))
    NotificationTarget.objects.filter(pk=form.pk).update(enabled=False)
    notifier.send_due(form.pk)
    assert len(receiver.requests) == 1
    assert NotificationDelivery.objects.filter(status="failed").count() == 1


# -- secrets ---------------------------------------------------------------------------------------


def test_the_url_is_a_secret_masked_in_admin_never_logged_nor_audited(demo, by_hand, caplog):
    rec = NotificationReceiver(codes=[404] * 5)
    try:
        admin = Client()
        admin.force_login(demo["admin"])
        url = rec.url(path=f"hooks/{SECRET}")
        response = admin.post("/admin/runs/notificationtarget/add/", {
            "team": demo["team"].pk, "name": "ops chat", "destination": url,
            "events": ["escalation.opened", "run.failed"], "min_priority": 50,
            "enabled": "on"}, follow=True)
        assert response.status_code == 200
        chat = NotificationTarget.objects.get(name="ops chat")
        assert chat.destination == url and chat.events == ["escalation.opened", "run.failed"]
        listing = admin.get("/admin/runs/notificationtarget/").content.decode()
        page = admin.get(f"/admin/runs/notificationtarget/{chat.pk}/change/").content.decode()
        for html in (listing, page):
            assert SECRET not in html and "json://•••• (hidden)" in html
        # saved again with the URL left empty: kept as it was
        admin.post(f"/admin/runs/notificationtarget/{chat.pk}/change/", {
            "team": demo["team"].pk, "name": "ops chat 2", "destination": "",
            "events": ["escalation.opened"], "min_priority": 10, "enabled": "on"})
        chat.refresh_from_db()
        assert (chat.name, chat.destination, chat.min_priority) == ("ops chat 2", url, 10)

        with caplog.at_level(logging.DEBUG):
            opened(escalation(demo["team"], demo["operator"]))
            notifier.send_due(chat.pk)
        row = NotificationDelivery.objects.get()
        assert row.status == "pending" and row.attempts == 1 and "404" in row.last_error
        assert rec.requests[0]["path"] == f"/hooks/{SECRET}"  # it went where it should
        assert SECRET not in row.last_error
        assert SECRET not in caplog.text
        audit = list(AuditEvent.objects.filter(target_type="notification_target")
                     .values_list("detail", flat=True))
        assert len(audit) == 2 and SECRET not in str(audit)
        assert audit[1]["after"].get("destination") in (None, "(changed)")
        deliveries = admin.get("/admin/runs/notificationdelivery/").content.decode()
        assert SECRET not in deliveries
        assert admin.get("/admin/runs/notificationdelivery/add/").status_code == 403
    finally:
        rec.stop()


@pytest.mark.parametrize("destination, error", [
    ("", "Give the URL to send to."),
    ("not a url", "Not a URL apprise can send to"),
    ("email:", "Give at least one address"),
    ("email:ops@example.com, nope", "is not an email address"),
])
def test_admin_refuses_a_target_it_could_not_send_to(demo, destination, error):
    admin = Client()
    admin.force_login(demo["admin"])
    response = admin.post("/admin/runs/notificationtarget/add/", {
        "team": demo["team"].pk, "name": "bad", "destination": destination,
        "events": ["run.failed"], "min_priority": 50, "enabled": "on"})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not NotificationTarget.objects.exists()


def test_json_targets_on_private_hosts_are_refused_outside_the_embedded_default(demo, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    with pytest.raises(Exception, match="loopback"):
        notifier.validate("json://127.0.0.1:8080/hook")
    assert notifier.validate("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ")
    assert notifier.scrub("failed for json://h/p/abcdef123 at abcdef123",
                          "json://h/p/abcdef123") == "failed for •••• at ••••"
