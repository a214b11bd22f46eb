"""The console's permission checks. ``runs.permissions`` decides; a refusal here is Django's
403 (the styled ``403.html``, saying which role was missing), raised before anything runs."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from .. import permissions
from ..errors import Forbidden
from ..permissions import Action


def require(user, action: Action, team_id: int) -> None:
    """403 unless ``user`` may ``action`` in the team."""
    try:
        permissions.require(user, action, team_id)
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from None


def require_somewhere(user, action: Action) -> None:
    """403 unless ``user`` may ``action`` in at least one team (pages acting on several)."""
    if not permissions.teams_where(user, action).exists():
        raise PermissionDenied(f"Your role does not allow {permissions.DOING[action]} in any "
                               f"of your teams: that takes {permissions.who_may(action)}.")
