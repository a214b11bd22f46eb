"""Webhooks are always signed: a secret per team from its creation, shown in full once,
rotatable with a grace period in which both signatures are sent (issue 15, item 4)."""

from __future__ import annotations

import importlib
import json
import time
from datetime import timedelta

import pytest
from django.apps import apps
from django.test import Client
from django.utils import timezone

from runs import webhooks
from runs.admin import TeamForm
from runs.models import AuditEvent, Team, WebhookDelivery
from tests.api.conftest import (  # noqa: F401  (autouse fixtures)
    fast_password_hashing,
    hold_runs_unless_worker,
)

from .helpers import submit
from .test_webhooks import Receiver

BODY = b'{"event":"run.succeeded"}'


@pytest.fixture(autouse=True)
def local_receivers_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.stop()


@pytest.fixture
def admin(demo) -> Client:
    client = Client()
    client.force_login(demo["admin"])
    return client


def deliver(team: Team, receiver: Receiver, operator) -> dict:
    """One delivery of a run of ``team`` to ``receiver``, sent now; the request it made."""
    run = submit(team, operator, "Where is my order 1077?")
    delivery = WebhookDelivery.objects.create(run=run, event="run.succeeded", seq=0,
                                              url=receiver.url, payload={"id": run.pk},
                                              next_attempt_at=timezone.now())
    webhooks.attempt(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "delivered", delivery.last_error
    return receiver.requests[-1]


def verifies(secret: str, request: dict) -> bool:
    headers = request["headers"]
    return webhooks.verify_signature(secret, headers["X-AgentDesk-Timestamp"], request["body"],
                                     headers["X-AgentDesk-Signature"])


def test_every_team_gets_its_own_secret_at_creation(demo):
    first, second = demo["team"], Team.objects.create(slug="fresh", name="Fresh")
    for team in (first, second):
        assert team.webhook_secret.startswith("whsec_") and len(team.webhook_secret) >= 40
    assert first.webhook_secret != second.webhook_secret


def test_the_migration_gives_existing_teams_without_a_secret_one(demo):
    Team.objects.filter(pk=demo["team"].pk).update(webhook_secret="")
    migration = importlib.import_module("runs.migrations.0016_security")
    migration.give_every_team_a_secret(apps, None)
    assert Team.objects.get(pk=demo["team"].pk).webhook_secret.startswith("whsec_")
    assert not Team.objects.filter(webhook_secret="").exists()


def test_deliveries_are_signed_with_the_team_secret(demo, receiver):
    request = deliver(demo["team"], receiver, demo["operator"])
    assert verifies(demo["team"].webhook_secret, request)
    assert not verifies("whsec_someone-else", request)


def test_a_team_without_a_secret_sends_nothing_unsigned(demo, receiver):
    Team.objects.filter(pk=demo["team"].pk).update(webhook_secret="")  # a hand-edited row
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    delivery = WebhookDelivery.objects.create(run=run, event="run.succeeded", seq=0,
                                              url=receiver.url, payload={"id": run.pk},
                                              next_attempt_at=timezone.now())
    assert webhooks.attempt(delivery.pk) is not None  # retried later, once it has one
    delivery.refresh_from_db()
    assert delivery.status == "pending" and "no webhook secret" in delivery.last_error
    assert receiver.requests == []


def test_rotation_signs_with_both_secrets_during_the_grace_period_then_the_new_only(
        demo, receiver, settings):
    team = demo["team"]
    old = team.webhook_secret
    new = webhooks.rotate_secret(team.pk, actor=demo["admin"])
    team.refresh_from_db()
    assert new != old and team.webhook_secret == new and team.webhook_secret_previous == old

    during = deliver(team, receiver, demo["operator"])
    assert during["headers"]["X-AgentDesk-Signature"].count("sha256=") == 2
    assert verifies(new, during) and verifies(old, during)  # receivers on either secret

    Team.objects.filter(pk=team.pk).update(
        webhook_secret_rotated_at=timezone.now()
        - timedelta(seconds=settings.WEBHOOK_SECRET_GRACE_SECONDS + 1))
    after = deliver(team, receiver, demo["operator"])
    assert after["headers"]["X-AgentDesk-Signature"].count("sha256=") == 1
    assert verifies(new, after) and not verifies(old, after)

    [event] = AuditEvent.objects.filter(action="team.webhook_secret_rotated")
    assert event.actor == demo["admin"] and event.team_id == team.pk
    assert new not in json.dumps(event.detail) and old not in json.dumps(event.detail)


def test_verify_signature_accepts_any_entry_of_a_rotation_header():
    now = time.time()
    ts = str(int(now))
    header = f"{webhooks.sign('whsec_new', ts, BODY)}, {webhooks.sign('whsec_old', ts, BODY)}"
    assert webhooks.verify_signature("whsec_new", ts, BODY, header, now=now)
    assert webhooks.verify_signature("whsec_old", ts, BODY, header, now=now)
    assert not webhooks.verify_signature("whsec_other", ts, BODY, header, now=now)
    assert not webhooks.verify_signature("whsec_new", ts, BODY + b" ", header, now=now)


def test_admin_shows_a_new_team_secret_once_then_masked(demo, admin):
    blank = TeamForm()  # whatever else the form has, at its initial values
    post = {name: value for name in blank.fields
            if (value := blank[name].value()) not in (None, False)}
    post |= {"slug": "new", "name": "New team", "memberships-TOTAL_FORMS": "0",
             "memberships-INITIAL_FORMS": "0"}
    response = admin.post("/admin/runs/team/add/", post, follow=True)
    secret = Team.objects.get(slug="new").webhook_secret
    assert secret in response.content.decode()  # once, in the message
    change = admin.get(f"/admin/runs/team/{Team.objects.get(slug='new').pk}/change/")
    page = change.content.decode()
    assert secret not in page and webhooks.masked(secret) in page
    assert secret not in admin.get("/admin/runs/team/").content.decode()
    assert 'name="webhook_secret"' not in page  # not editable: rotation changes it


def test_admin_rotate_action_shows_the_new_secret_once(demo, admin):
    team = demo["team"]
    old = team.webhook_secret
    response = admin.post("/admin/runs/team/", {"action": "rotate_webhook_secret",
                                                "_selected_action": [team.pk]}, follow=True)
    team.refresh_from_db()
    assert team.webhook_secret != old and team.webhook_secret_previous == old
    assert team.webhook_secret in response.content.decode()
    page = admin.get(f"/admin/runs/team/{team.pk}/change/").content.decode()
    assert team.webhook_secret not in page and "previous secret still signs" in page
