"""``{% may "decide" esc.team_id as may_decide %}``: whether the page's user may do an action
in a team (``runs.permissions``), so a viewer's console shows no button it would refuse.
Without a team id: in any of the user's teams. Fragments rendered for a websocket (no user)
get False: they never carry buttons."""

from __future__ import annotations

from django import template

from runs import permissions

register = template.Library()


def _roles(context) -> tuple[bool, dict[int, frozenset]] | None:
    user = context.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    # one query per request (or per render without one), not one per row: kept on the
    # request, as partials and includes render with render contexts of their own
    request = context.get("request")
    cache = request.__dict__ if request is not None else context.render_context
    key = f"_agentdesk_roles_{user.pk}"
    if key not in cache:
        cache[key] = (user.is_superuser, permissions.actions_by_team(user))
    return cache[key]


@register.simple_tag(takes_context=True)
def may(context, action: str, team_id: int | None = None) -> bool:
    roles = _roles(context)
    if roles is None:
        return False
    superuser, by_team = roles
    if superuser:
        return True
    wanted = permissions.Action(action)
    if team_id is None:
        return any(wanted in allowed for allowed in by_team.values())
    return wanted in by_team.get(team_id, frozenset())
