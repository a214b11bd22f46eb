"""Admin: an API key is created with its key shown once, revoked by an action; webhook
deliveries are read-only."""

from __future__ import annotations

import re

from django.test import Client

from runs.models import ApiKey

from .conftest import ApiClient


def test_admin_creates_a_key_shown_once_and_revokes_it(demo):
    admin = Client()
    admin.force_login(demo["admin"])
    response = admin.post("/admin/runs/apikey/add/", {
        "team": demo["team"].pk, "name": "from-admin", "scopes": ["read"],
        "rate_limit_per_minute": 60,
    }, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    raw = re.search(r"(adk_[A-Za-z0-9_-]{43})", page).group(1)
    key = ApiKey.objects.get(name="from-admin")
    assert key.scopes == ["read"] and key.prefix == raw[:8]
    assert ApiClient(raw).get("/runs").status_code == 200
    detail = admin.get(f"/admin/runs/apikey/{key.pk}/change/").content.decode()
    assert raw not in detail  # never shown again
    admin.post("/admin/runs/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    assert ApiClient(raw).get("/runs").status_code == 401


def test_webhook_deliveries_are_read_only_in_admin(demo):
    admin = Client()
    admin.force_login(demo["admin"])
    assert admin.get("/admin/runs/webhookdelivery/").status_code == 200
    assert admin.get("/admin/runs/webhookdelivery/add/").status_code == 403


def test_api_posts_need_no_csrf_token(make_key):
    client = ApiClient(make_key())
    client.client = Client(enforce_csrf_checks=True)
    response = client.post("/runs", {"agent": "support-refunds", "input": {"message": "hi"}})
    assert response.status_code == 201
