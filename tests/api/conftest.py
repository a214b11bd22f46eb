"""API fixtures: keys made through the same code as ``create_api_key``, and a client that
speaks JSON with a bearer key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from runs.api_keys import create_api_key


class ApiClient:
    """Django's test client with ``Authorization: Bearer <key>`` and JSON bodies."""

    def __init__(self, key: str | None) -> None:
        self.key = key
        self.client = Client()

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        return {**headers, **(extra or {})}

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any):
        return self.client.get("/api/v1" + path, params, headers=self.headers(headers))

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None,
             raw: bytes | str | None = None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post("/api/v1" + path, data=data, content_type="application/json",
                                headers=self.headers(headers))


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The demo users' passwords are hashed on every test; PBKDF2 is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def hold_runs_unless_worker(request, monkeypatch):
    """Without the ``celery_worker`` fixture, submitted runs stay queued: a worker left
    running by an earlier test must not advance them while this test's database is torn
    down (on Postgres, TRUNCATE against a checkpoint transaction can deadlock)."""
    if "celery_worker" not in request.fixturenames:
        monkeypatch.setattr("runs.enqueue.advance_run", lambda *args, **kwargs: None)


@pytest.fixture
def make_key(demo):
    """``make_key(team=demo team, scopes=all, rate=None) -> raw key``."""

    def make(team=None, scopes=None, rate=None, name="test") -> str:
        return create_api_key(team=team or demo["team"], name=name, scopes=scopes,
                              rate_limit_per_minute=rate).raw

    return make


@pytest.fixture
def api(make_key) -> ApiClient:
    """A client with an all-scopes key of the demo team."""
    return ApiClient(make_key())


@pytest.fixture
def api_as():
    return ApiClient


def submit_body(message: str = "Where is my order 1077?", **extra: Any) -> dict[str, Any]:
    return {"agent": "support-refunds", "input": {"message": message}, **extra}
