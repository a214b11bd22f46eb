"""``Authorization: Bearer <key>``: the key must exist, not be revoked, carry the scope of
the endpoint's action (``runs.permissions.KEY_SCOPES``) and stay under its rate limit. The
key's team is the only one its reads reach (``api.selectors``).

A key this process has read before is taken from its memory (``api_keys.remembered``) and
checked against the keys' generation, read in the same Redis round trip as the rate-limit
count: no database read for a known key, and a revoked one is refused at once."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from .. import api_keys, errors, permissions
from ..models import ApiKey
from ..permissions import Action
from . import ratelimit


class ApiKeyAuth(HttpBearer):
    def __init__(self, action: Action) -> None:
        super().__init__()
        self.action = action
        self.scope = permissions.KEY_SCOPES[action]

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        raw = token.strip()
        known = api_keys.remembered(raw)
        if known is None:
            key = api_keys.authenticate(raw)
            if key is None:
                return None  # → 401
            retry_after = ratelimit.hit(key.pk, key.rate_limit_per_minute)
        else:
            key, seen = known
            retry_after, now = ratelimit.hit_and_read(key.pk, key.rate_limit_per_minute,
                                                      api_keys.GENERATION)
            if now != seen:  # a key was revoked or deleted since: read this one again
                key = api_keys.authenticate(raw)
                if key is None:
                    return None
            else:
                api_keys.touch(key)
        if retry_after is not None:
            raise errors.RateLimited(
                f"More than {key.rate_limit_per_minute} requests a minute; "
                f"retry in {retry_after:.0f} s.",
                headers={"Retry-After": str(int(retry_after))})
        if not permissions.can(key, self.action, key.team_id):
            raise errors.InsufficientScope(f"This key lacks the {self.scope!r} scope.")
        return key


# One per kind of endpoint; cancelling takes the submit scope, assigning the resolve scope.
SUBMIT = ApiKeyAuth(Action.SUBMIT)
READ = ApiKeyAuth(Action.VIEW)
RESOLVE = ApiKeyAuth(Action.DECIDE)
