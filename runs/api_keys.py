"""API keys: created once (the caller sees the key exactly then), stored as a SHA-256 hash,
looked up by their first characters, revocable, scoped.

A key is ``adk_`` + 43 URL-safe random characters (256 bits). Only ``sha256(key)`` is kept;
``prefix`` (the first 8 characters) narrows the lookup and names the key in admin and logs.

Each web process remembers the keys it has authenticated (``remembered``), so a request
does not read the key and its team from the database every time. A key's row does not
change once created except by revocation or deletion, and each of those changes the
*generation*: a random number in Django's cache (Redis in production, shared by every
process) that each remembered key was read under. The API reads the generation in the same
Redis round trip as the key's rate-limit count (``runs.api.ratelimit.hit_and_read``) and
reads the key again when it differs, so a revoked key is refused at its next request, in
every process. A random number rather than a counter: were the cache emptied, the first
reader puts a new one, which no remembered key matches.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from .models import ApiKey, AuditEvent, Team

KEY_PREFIX = "adk_"
PREFIX_LENGTH = 8
ALL_SCOPES = tuple(ApiKey.Scope.values)
# last_used_at is informative: write it at most this often per key, not on every request.
TOUCH_EVERY = timedelta(minutes=1)
# When this process last touched each key (by hash: unique, unlike a reused primary key).
_touched: dict[str, datetime] = {}
_touch_lock = threading.Lock()
# The cache entry holding the keys' generation (see the module's docstring).
GENERATION = "api_keys:generation"
# A remembered key is read again after this long whatever the generation says: the bound
# on a change made around this module (raw SQL), which does not change the generation.
REMEMBER_SECONDS = 300.0
REMEMBER_MAX = 10_000
# hash → (key with its team, the generation it was read under, when: monotonic seconds)
_remembered: dict[str, tuple[ApiKey, int, float]] = {}


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    raw: str  # shown once, never stored


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def parse_scopes(scopes: str | Iterable[str] | None) -> list[str]:
    """``"submit,read"`` or a list → a sorted list of known scopes (ValueError otherwise)."""
    if scopes is None:
        return list(ALL_SCOPES)
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    clean = sorted({s.strip() for s in items if s.strip()})
    unknown = [s for s in clean if s not in ALL_SCOPES]
    if unknown or not clean:
        raise ValueError(f"Unknown scopes {unknown}; use some of {', '.join(ALL_SCOPES)}.")
    return clean


def create_api_key(
    *, team: Team, name: str, scopes: str | Iterable[str] | None = None,
    rate_limit_per_minute: int | None = None, actor_id: int | None = None,
) -> NewKey:
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    fields = {"rate_limit_per_minute": rate_limit_per_minute} if rate_limit_per_minute else {}
    with transaction.atomic():
        key = ApiKey.objects.create(
            team=team, name=name, prefix=raw[:PREFIX_LENGTH], hashed_key=hash_key(raw),
            scopes=parse_scopes(scopes), **fields,
        )
        AuditEvent.objects.create(team=team, actor_id=actor_id, api_key=key,
                                  action="api_key.created", target_type="api_key",
                                  target_id=str(key.pk), detail={"scopes": key.scopes})
    return NewKey(key=key, raw=raw)


def revoke_api_key(key_id: int, actor_id: int | None = None) -> bool:
    """Revoke a key (idempotent). Returns True when this call revoked it."""
    now = timezone.now()
    with transaction.atomic():
        done = ApiKey.objects.filter(pk=key_id, revoked_at=None).update(revoked_at=now)
        if done:
            key = ApiKey.objects.get(pk=key_id)
            AuditEvent.objects.create(team_id=key.team_id, actor_id=actor_id, api_key=key,
                                      action="api_key.revoked", target_type="api_key",
                                      target_id=str(key_id))
            keys_changed()
    return bool(done)


def authenticate(raw: str) -> ApiKey | None:
    """The live key ``raw`` names, or None (unknown, malformed or revoked), read from the
    database; remembered under the generation read before it (``remembered``)."""
    if not raw or len(raw) > 200:
        return None
    digest = hash_key(raw)
    seen = generation()  # before the read: a change after it makes the memory stale
    candidates = ApiKey.objects.select_related("team").filter(prefix=raw[:PREFIX_LENGTH])
    for key in candidates:
        if hmac.compare_digest(key.hashed_key, digest):
            if key.revoked_at is not None:
                _remembered.pop(digest, None)
                return None
            _remember(digest, key, seen)
            touch(key)
            return key
    _remembered.pop(digest, None)
    return None


def remembered(raw: str) -> tuple[ApiKey, int] | None:
    """The key ``raw`` named when this process last read it, with the generation it was
    read under — valid only while the generation is still that one — or None. The key and
    its team are shared by the requests that use it: read them, never change them."""
    if not raw or len(raw) > 200:
        return None
    entry = _remembered.get(hash_key(raw))
    if entry is None or time.monotonic() - entry[2] > REMEMBER_SECONDS:
        return None
    return entry[0], entry[1]


def generation() -> int:
    """The keys' generation now (one cache read; a new one when the cache has none)."""
    value = cache.get(GENERATION)
    if value is None:
        cache.add(GENERATION, secrets.randbits(62), timeout=None)
        value = cache.get(GENERATION)
    return int(value)


def keys_changed() -> None:
    """A key was revoked or deleted (or its team changed): every process reads its keys
    again. Now, so that no request of this transaction's caller sees the key as it was, and
    again after commit, so that a request that read the generation meanwhile (and the row
    still unchanged) does not keep it."""
    _bump()
    transaction.on_commit(_bump)


def _bump() -> None:
    cache.set(GENERATION, secrets.randbits(62), timeout=None)


def _remember(digest: str, key: ApiKey, seen: int) -> None:
    if len(_remembered) >= REMEMBER_MAX:
        _remembered.clear()
    _remembered[digest] = (key, seen, time.monotonic())


@receiver(post_delete, sender=ApiKey, dispatch_uid="api_keys.deleted")
def _key_deleted(sender, **kwargs) -> None:
    keys_changed()  # deleted in admin, or with its team


@receiver(post_save, sender=Team, dispatch_uid="api_keys.team_saved")
def _team_saved(sender, created: bool = False, **kwargs) -> None:
    if not created:
        keys_changed()  # a remembered key carries its team


def touch(key: ApiKey) -> None:
    """Record use, at most once per TOUCH_EVERY per key: this process asks the database at
    most that often per key (no round trip at all on other requests), and the conditional
    UPDATE keeps it to one write per TOUCH_EVERY across all processes."""
    now = timezone.now()
    with _touch_lock:
        last = _touched.get(key.hashed_key)
        if last is not None and now - last < TOUCH_EVERY:
            return
        _touched[key.hashed_key] = now
        if len(_touched) > 10_000:  # keys seen by a long-lived process: forget the oldest
            for stale in sorted(_touched, key=_touched.__getitem__)[:5_000]:
                del _touched[stale]
    ApiKey.objects.filter(pk=key.pk).filter(
        Q(last_used_at=None) | Q(last_used_at__lt=now - TOUCH_EVERY)
    ).update(last_used_at=now)
