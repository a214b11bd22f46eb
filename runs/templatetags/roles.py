"""``{% may "decide" esc.team_id as may_decide %}``: whether the page's user may do an action
in a team (``runs.permissions``), so a viewer's console shows no button it would refuse.
Without a team id: in any of the user's teams. Fragments rendered for a websocket (no user)
get False: they never carry buttons."""

from __future__ import annotations

from django import template

from runs import permissions

register = template.Library()


def permitted(user, cache: dict, action: str, team_id: int | None = None) -> bool:
    """Whether ``user`` may do ``action`` in team ``team_id`` (in any of their teams when
    None). The user's roles are read with one query and kept in ``cache`` (the request's
    ``__dict__``, or a render context), so a page of rows costs one query, not one a row."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    key = f"_agentdesk_roles_{user.pk}"
    if key not in cache:
        cache[key] = (user.is_superuser, permissions.actions_by_team(user))
    superuser, by_team = cache[key]
    if superuser:
        return True
    wanted = permissions.Action(action)
    if team_id is None:
        return any(wanted in allowed for allowed in by_team.values())
    return wanted in by_team.get(team_id, frozenset())


@register.simple_tag(takes_context=True)
def may(context, action: str, team_id: int | None = None) -> bool:
    # kept on the request, as partials and includes render with render contexts of their own
    request = context.get("request")
    cache = request.__dict__ if request is not None else context.render_context
    return permitted(context.get("user"), cache, action, team_id)
