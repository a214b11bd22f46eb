"""``manage.py check --deploy`` is clean with production settings from the environment, and
the secret key fails closed (``agentdesk.secret_key``)."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from agentdesk import secret_key

ROOT = Path(__file__).resolve().parents[2]


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECURE": "true",
        "DJANGO_HSTS_SECONDS": "31536000",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "agentdesk.example.com",
        "AGENTDESK_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_the_dev_defaults(tmp_path):
    env = {**os.environ, "DJANGO_DEBUG": "true", "AGENTDESK_DATA_DIR": str(tmp_path)}
    env.pop("DJANGO_SECRET_KEY", None)
    env.pop("DJANGO_SECURE", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS" in result.stderr + result.stdout


# --- the secret key fails closed (agentdesk.secret_key) -------------------------------------

def manage(*args: str, tmp_path: Path, **overrides: str | None) -> subprocess.CompletedProcess:
    """``manage.py`` in a subprocess with the environment changed (None removes a variable)."""
    env = {**os.environ, "AGENTDESK_DATA_DIR": str(tmp_path)}
    for name in ("DJANGO_SECRET_KEY", "REDIS_URL", "DJANGO_DEBUG"):
        env.pop(name, None)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_production_topology_refuses_to_start_without_a_key(tmp_path):
    result = manage("check", tmp_path=tmp_path, REDIS_URL="redis://127.0.0.1:6379/15")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    assert secret_key.HOW_TO in result.stderr  # it says how to make one
    assert not (tmp_path / secret_key.GENERATED_FILE).exists()


@pytest.mark.parametrize("key", ["insecure-dev-key-change-me-in-production-0123456789",
                                 "django-insecure-" + "x" * 50, "changeme"])
def test_a_known_key_is_refused_outside_debug_even_embedded(tmp_path, key):
    result = manage("check", tmp_path=tmp_path, DJANGO_SECRET_KEY=key)
    assert result.returncode != 0
    assert "publicly known key" in result.stderr and secret_key.HOW_TO in result.stderr


def test_deploy_check_says_the_same_where_debug_let_a_known_key_by(tmp_path):
    result = manage("check", "--deploy", tmp_path=tmp_path, DJANGO_DEBUG="true",
                    DJANGO_SECRET_KEY="insecure-dev-key-change-me-in-production-0123456789")
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "agentdesk.E002" in out and secret_key.HOW_TO in out


def test_embedded_default_generates_one_key_and_keeps_it(tmp_path):
    show = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = manage("shell", "-v", "0", "-c", show, tmp_path=tmp_path)
    second = manage("shell", "-v", "0", "-c", show, tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert len(key) >= 50 and second.stdout.strip() == key  # sessions survive a restart
    kept = tmp_path / secret_key.GENERATED_FILE
    assert kept.read_text().strip() == key and stat.S_IMODE(kept.stat().st_mode) == 0o600
    other = manage("shell", "-v", "0", "-c", show, tmp_path=tmp_path / "elsewhere")
    assert other.stdout.strip() != key  # a new data folder, a new random key
    deploy = manage("check", "--deploy", tmp_path=tmp_path)
    assert "agentdesk.W002" in deploy.stdout + deploy.stderr  # …but a deployment must set one


def test_resolve_rules(tmp_path):
    good = secrets.token_urlsafe(50)
    assert secret_key.resolve(good, debug=False, embedded=False, data_dir=tmp_path) == (
        good, secret_key.ENV)
    with pytest.raises(ImproperlyConfigured, match="not set"):
        secret_key.resolve("", debug=False, embedded=False, data_dir=tmp_path)
    with pytest.raises(ImproperlyConfigured, match="publicly known"):
        secret_key.resolve("secret", debug=False, embedded=True, data_dir=tmp_path)
    assert secret_key.resolve("secret", debug=True, embedded=False, data_dir=tmp_path)[0] == \
        "secret"  # DEBUG: your own machine, your call (check --deploy still says E002)
    key, source = secret_key.resolve("", debug=True, embedded=False, data_dir=tmp_path)
    assert source == secret_key.GENERATED and len(key) >= 50
    (tmp_path / secret_key.GENERATED_FILE).write_text("short")
    with pytest.raises(ImproperlyConfigured, match="no usable key"):
        secret_key.resolve("", debug=False, embedded=True, data_dir=tmp_path)


# --- secure cookies and headers: on by default in the production topology -------------------

PRODUCTION = {"REDIS_URL": "redis://127.0.0.1:6379/15", "DJANGO_ALLOWED_HOSTS":
              "agentdesk.example.com"}
SHOW_SECURITY = ("from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, "
                 "s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
                 "s.SECURE_CONTENT_TYPE_NOSNIFF, s.SECURE_REFERRER_POLICY, s.X_FRAME_OPTIONS)")


def test_production_topology_is_https_only_without_being_told(tmp_path):
    """No DJANGO_SECURE: the production topology outside DEBUG gets secure cookies, the
    HTTPS redirect and HSTS, and ``check --deploy`` has nothing to say."""
    key = secrets.token_urlsafe(50)
    shown = manage("shell", "-v", "0", "-c", SHOW_SECURITY, tmp_path=tmp_path,
                   DJANGO_SECRET_KEY=key, DJANGO_SECURE=None, **PRODUCTION)
    assert shown.stdout.split() == ["True", "True", "True", "31536000", "True", "same-origin",
                                    "DENY"], shown.stderr
    result = manage("check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path,
                    DJANGO_SECRET_KEY=key, DJANGO_SECURE=None, **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_plain_http_switch_turns_it_off_and_check_deploy_says_so(tmp_path):
    key = secrets.token_urlsafe(50)
    shown = manage("shell", "-v", "0", "-c", SHOW_SECURITY, tmp_path=tmp_path,
                   DJANGO_SECRET_KEY=key, DJANGO_SECURE="false", **PRODUCTION)
    assert shown.stdout.split()[:4] == ["False", "False", "False", "0"], shown.stderr
    result = manage("check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path,
                    DJANGO_SECRET_KEY=key, DJANGO_SECURE="false", **PRODUCTION)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "security.W012" in out and "security.W016" in out  # session, CSRF cookies
