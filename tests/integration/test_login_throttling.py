"""Log-in throttling (django-axes, issue 15 item 7): repeated failures lock one username from
one address out for a while, with a clear message; nobody else is affected."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.utils import timezone

PASSWORD = "test-password-1"  # the demo fixture's


def log_in(username: str, password: str, address: str = "127.0.0.1", path="/accounts/login/"):
    return Client().post(path, {"username": username, "password": password, "next": "/inbox/"},
                         REMOTE_ADDR=address)


def logged_in(response) -> bool:
    return response.status_code == 302 and response.wsgi_request.user.is_authenticated


def fail(username: str, times: int, address: str = "127.0.0.1") -> None:
    for _ in range(times):
        response = log_in(username, "wrong-password", address)
        assert response.status_code in (200, 429)


def test_repeated_failures_lock_that_username_from_that_address(demo):
    limit = settings.AXES_FAILURE_LIMIT
    fail("operator", limit)
    response = log_in("operator", PASSWORD)  # even the right password now
    assert response.status_code == 429 and not response.wsgi_request.user.is_authenticated
    page = response.content.decode()
    assert 'data-testid="login-locked"' in page
    assert "Too many failed log-ins" in page and "from your address" in page
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    assert f"locked for {minutes} minutes" in page
    assert 'name="password"' in page and "wrong-password" not in page

    assert logged_in(log_in("admin", PASSWORD))  # another user from the same address
    assert logged_in(log_in("operator", PASSWORD, address="10.0.0.9"))  # elsewhere


def test_the_lock_ends_after_the_cool_off(demo):
    fail("operator", settings.AXES_FAILURE_LIMIT)
    assert log_in("operator", PASSWORD).status_code == 429
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert logged_in(log_in("operator", PASSWORD))


def test_a_success_resets_the_count(demo):
    limit = settings.AXES_FAILURE_LIMIT
    fail("operator", limit - 1)
    assert logged_in(log_in("operator", PASSWORD))
    fail("operator", limit - 1)
    assert logged_in(log_in("operator", PASSWORD))


def test_the_admin_log_in_is_throttled_too(demo):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in("admin", "wrong-password", path="/admin/login/")
    response = log_in("admin", PASSWORD, path="/admin/login/")
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.content.decode()


@pytest.mark.parametrize("failures", [1, 3])
def test_a_few_mistakes_only_say_the_password_is_wrong(demo, failures):
    fail("operator", failures)
    response = log_in("operator", "wrong-password")
    assert response.status_code == 200 and "login-locked" not in response.content.decode()
    assert logged_in(log_in("operator", PASSWORD))
