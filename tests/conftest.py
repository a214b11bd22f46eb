"""Shared fixtures: the LLM simulator over HTTP, a real Celery worker, and personas.

The worker is Celery's own in-thread worker consuming the configured broker (memory on the
embedded default, Redis when REDIS_URL is set); the tests only ever reach it through
``advance_run.delay`` fired by the services, as production does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with a clear message."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def llmsim() -> Iterator[str]:
    from django.conf import settings

    from agentdesk.llmsim.server import start_in_thread
    from runs import execution

    sim = start_in_thread(port=0, latency_scale=0, fault_timeout_s=5)
    settings.LLM_BASE_URL = sim.base_url
    settings.LLM_API_KEY = "sim"
    execution.gateway.cache_clear()
    yield sim.base_url
    sim.stop()


_worker_running = False


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, llmsim) -> Iterator[Any]:
    from celery.contrib.testing.worker import start_worker

    from agentdesk.celery import app

    global _worker_running
    with django_db_blocker.unblock():
        app.control.purge() if not app.conf.broker_url.startswith("memory") else None
    with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False,
                      loglevel="WARNING", shutdown_timeout=30) as worker:
        _worker_running = True
        try:
            yield worker
        finally:
            _worker_running = False


@pytest.fixture(autouse=True)
def worker_idle_before_flush(request) -> Iterator[None]:
    """A test with the database leaves nothing for the session's worker to do while the
    database is emptied after it: work it queued (a decision's resume, a run it did not
    wait for) is purged, and what the worker has started is let finish. Emptying Postgres
    (TRUNCATE) while a worker's checkpoint holds row locks on the same tables deadlocks."""
    if "transactional_db" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")  # set up first, so emptied after this
    yield
    if not _worker_running:
        return
    from celery.worker import state

    from agentdesk.celery import app

    if not app.conf.broker_url.startswith("memory"):
        app.control.purge()
    deadline = time.monotonic() + 15
    while (state.active_requests or state.reserved_requests) and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """Each test gets its own refunds journal (the outside witness of side effects)."""
    monkeypatch.setenv("AGENTDESK_DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def demo(transactional_db):
    """The demo team with its operator and admin, plus another team's operator."""
    from django.contrib.auth import get_user_model
    from django.core.cache import cache

    from runs.breakers import reset_breakers
    from runs.demo import seed_demo

    cache.clear()  # the response cache must not carry replies from test to test
    reset_breakers()  # nor circuit breakers their failures
    from runs.models import Membership, Team

    seed_demo("test-password-1")
    users = get_user_model()
    other_team = Team.objects.create(slug="other", name="Other team")
    outsider = users.objects.create_user("outsider", password="test-password-1")
    Membership.objects.create(user=outsider, team=other_team, role="operator")
    return {
        "team": Team.objects.get(slug="demo"),
        "operator": users.objects.get(username="operator"),
        "admin": users.objects.get(username="admin"),
        "other_team": other_team,
        "outsider": outsider,
    }


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Tests log in often; the production hasher's cost buys nothing here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
