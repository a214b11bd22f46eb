"""``Authorization: Bearer <key>``: the key must exist, not be revoked, carry the
endpoint's scope and stay under its rate limit."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from .. import api_keys, errors
from ..models import ApiKey
from . import ratelimit


class ApiKeyAuth(HttpBearer):
    def __init__(self, scope: str) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        key = api_keys.authenticate(token.strip())
        if key is None:
            return None  # → 401
        retry_after = ratelimit.hit(key.pk, key.rate_limit_per_minute)
        if retry_after is not None:
            raise errors.RateLimited(
                f"More than {key.rate_limit_per_minute} requests a minute; "
                f"retry in {retry_after:.0f} s.",
                headers={"Retry-After": str(int(retry_after))})
        if self.scope not in (key.scopes or []):
            raise errors.InsufficientScope(f"This key lacks the {self.scope!r} scope.")
        return key


SUBMIT = ApiKeyAuth(ApiKey.Scope.SUBMIT)
READ = ApiKeyAuth(ApiKey.Scope.READ)
RESOLVE = ApiKeyAuth(ApiKey.Scope.RESOLVE)
