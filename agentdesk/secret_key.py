"""``SECRET_KEY`` that fails closed: a deployment never runs on a key someone else knows.

Whoever knows the key can forge session cookies (log in as anyone) and password-reset
tokens, so the settings resolve it here:

- ``DJANGO_SECRET_KEY`` set: it is the key, unless DEBUG is off and it is a *known* key
  (the defaults this project or Django's ``startproject`` ever shipped, or common
  placeholders) — then start-up is refused.
- unset, with DEBUG on or on the embedded default (no ``REDIS_URL``: web and worker are one
  process, as ``make run`` and the tests start it): a random key, generated once and kept in
  ``$AGENTDESK_DATA_DIR/secret_key`` (mode 0600), so sessions survive a restart and nothing
  needs setting. ``check --deploy`` still warns that it is not set.
- unset, with ``REDIS_URL`` set and DEBUG off (the production topology: web and workers,
  possibly on several machines, must share one key): start-up is refused.

Every refusal says how to make a key (:data:`HOW_TO`). ``runs.checks`` reports the same
problems as a deploy system check.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

HOW_TO = "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
GENERATED_FILE = "secret_key"
ENV = "env"
GENERATED = "generated"
# Keys that are public: the embedded default this project shipped until issue 15, and
# placeholders people paste from examples. Django's own throwaway keys carry a prefix.
KNOWN_KEYS = frozenset({
    "insecure-dev-key-change-me-in-production-0123456789",
    "change-me", "changeme", "change_me", "secret", "secret-key", "secretkey", "django",
    "dev", "development", "test", "testing", "password", "notsecret", "not-a-secret",
})
KNOWN_PREFIXES = ("django-insecure-", "insecure-", "changeme", "change-me")


def known(key: str) -> bool:
    """True for a key that is public: a shipped default or a placeholder."""
    normalized = key.strip().lower()
    return normalized in KNOWN_KEYS or normalized.startswith(KNOWN_PREFIXES)


def refusal(reason: str) -> str:
    """The message of every refusal: what is wrong, and how to make a key."""
    return (f"{reason} Make a key with\n    {HOW_TO}\nand set DJANGO_SECRET_KEY to it in the "
            "environment of every AgentDesk process (web, workers, beat): they must share "
            "it. For local development, DJANGO_DEBUG=true (or leaving REDIS_URL unset) "
            "generates one in AGENTDESK_DATA_DIR instead.")


def resolve(value: str, *, debug: bool, embedded: bool, data_dir: Path) -> tuple[str, str]:
    """``(key, source)`` for the settings; raises ImproperlyConfigured when it must not run.
    ``source`` is :data:`ENV` or :data:`GENERATED`."""
    if value:
        if known(value) and not debug:
            raise ImproperlyConfigured(refusal(
                "DJANGO_SECRET_KEY is a publicly known key (a shipped default or a "
                "placeholder): anyone could forge sessions, so AgentDesk refuses to start."))
        return value, ENV
    if not (debug or embedded):
        raise ImproperlyConfigured(refusal(
            "DJANGO_SECRET_KEY is not set, DEBUG is off and REDIS_URL is set (the production "
            "topology), so AgentDesk refuses to start on a key of its own making."))
    return generated_key(data_dir), GENERATED


def generated_key(data_dir: Path) -> str:
    """The key kept in ``data_dir``, made on first use. Processes racing to make it agree:
    the first file linked into place wins and everyone reads that one."""
    path = data_dir / GENERATED_FILE
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".secret_key.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(50))
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(tmp, path)
        except OSError as exc:
            raise ImproperlyConfigured(refusal(
                f"DJANGO_SECRET_KEY is not set and no key could be kept in {path} ({exc}).")
            ) from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    key = path.read_text().strip()
    if len(key) < 50 or known(key):
        raise ImproperlyConfigured(refusal(
            f"{path} holds no usable key (short or publicly known): delete it to get a new "
            "one, or set DJANGO_SECRET_KEY."))
    return key
