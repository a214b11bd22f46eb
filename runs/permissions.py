"""Who may do what, in which team: THE rules of roles and tenancy, in one place.

A user's power in a team is their membership's role (``Membership.Role``):

- **viewer**: sees the team's console (inbox, escalations, runs, dashboard, audit…), read-only;
- **operator**: also starts runs, claims, decides, assigns, cancels and reviews;
- **admin** (team admin): also administers the team — its agents, policies and rules, API
  keys, webhooks, members, MCP servers, HTTP tools, knowledge documents and notification
  targets (Django admin, scoped to the team) — raises its budget for the day and applies a
  calibrated threshold to its policies;
- a **superuser** may do everything in every team.

An API key acts for its one team, and its scopes name what it may do (``KEY_SCOPES``).

Views, the API, consumers, the admin and the writers all ask ``can`` / ``require`` /
``teams_where`` here, so a rule changes in this module and nowhere else. Django admin
reaches it through ``TeamAdminBackend`` (model permissions for team admins) and
``admin_base.TeamScopedAdmin`` (which rows, choices and object URLs).
"""

from __future__ import annotations

from enum import StrEnum

from django.contrib.auth.backends import BaseBackend
from django.db.models import Model, QuerySet

from .errors import Forbidden
from .models import ApiKey, Membership, Team

Role = Membership.Role


class Action(StrEnum):
    VIEW = "view"
    SUBMIT = "submit"
    CLAIM = "claim"
    DECIDE = "decide"
    ASSIGN = "assign"
    CANCEL = "cancel"
    REVIEW = "review"
    EXTEND_BUDGET = "extend_budget"
    ADMINISTER = "administer"


OPERATE = frozenset({Action.VIEW, Action.SUBMIT, Action.CLAIM, Action.DECIDE, Action.ASSIGN,
                     Action.CANCEL, Action.REVIEW})
ALLOWED: dict[str, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.VIEW}),
    Role.OPERATOR: OPERATE,
    Role.ADMIN: frozenset(Action),
}

# What a refusal says: "Your role in Demo team (viewer) does not allow <this>."
DOING = {
    Action.VIEW: "seeing this team's work", Action.SUBMIT: "starting runs",
    Action.CLAIM: "claiming escalations", Action.DECIDE: "deciding escalations",
    Action.ASSIGN: "assigning escalations", Action.CANCEL: "cancelling runs",
    Action.REVIEW: "reviewing runs", Action.EXTEND_BUDGET: "raising the team's budget",
    Action.ADMINISTER: "administering the team",
}

# An API key's scope for each action it can take (None: no key may).
KEY_SCOPES: dict[Action, str] = {
    Action.VIEW: ApiKey.Scope.READ, Action.SUBMIT: ApiKey.Scope.SUBMIT,
    Action.CANCEL: ApiKey.Scope.SUBMIT, Action.DECIDE: ApiKey.Scope.RESOLVE,
    Action.ASSIGN: ApiKey.Scope.RESOLVE,
}


def roles_allowed(action: Action) -> list[str]:
    """The membership roles that may ``action``."""
    return [role for role, actions in ALLOWED.items() if action in actions]


def who_may(action: Action) -> str:
    """The roles that may ``action``, as a refusal names them: "an operator or a team admin"."""
    names = {Role.VIEWER: "a viewer", Role.OPERATOR: "an operator", Role.ADMIN: "a team admin"}
    return " or ".join(names[role] for role in roles_allowed(action)) or "a superuser"


def _team_id(team: Team | int | None) -> int | None:
    return team.pk if isinstance(team, Team) else team


def _is_user(principal) -> bool:
    return principal is not None and getattr(principal, "is_authenticated", False) \
        and getattr(principal, "is_active", True)


def can(principal, action: Action, team: Team | int | None) -> bool:
    """Whether ``principal`` (a user or an API key) may ``action`` in ``team``."""
    team_id = _team_id(team)
    if isinstance(principal, ApiKey):
        return (principal.revoked_at is None and principal.team_id == team_id
                and KEY_SCOPES.get(action) in (principal.scopes or []))
    if not _is_user(principal) or team_id is None:
        return False
    if principal.is_superuser:
        return True
    return Membership.objects.filter(user=principal, team_id=team_id,
                                     role__in=roles_allowed(action)).exists()


def role_in(user, team: Team | int) -> str | None:
    """The user's role in the team (None: not a member)."""
    if not _is_user(user):
        return None
    return Membership.objects.filter(user=user, team_id=_team_id(team)) \
        .values_list("role", flat=True).first()


def require(principal, action: Action, team: Team | int | None) -> None:
    """Raise Forbidden (403), saying which role was missing, unless ``can``."""
    if can(principal, action, team):
        return
    if isinstance(principal, ApiKey):
        raise Forbidden(f"This key lacks the {KEY_SCOPES.get(action, action)!r} scope.")
    role = role_in(principal, team) if team is not None else None
    team_row = Team.objects.filter(pk=_team_id(team)).first() if team is not None else None
    where = f" in {team_row.name} ({role})" if team_row is not None and role else ""
    raise Forbidden(f"Your role{where} does not allow {DOING[action]}: that takes "
                    f"{who_may(action)}.")


def teams_where(user, action: Action) -> QuerySet[Team]:
    """The teams in which ``user`` may ``action`` (every team for a superuser)."""
    if not _is_user(user):
        return Team.objects.none()
    if user.is_superuser:
        return Team.objects.all()
    # one membership per user and team: no duplicates to remove
    return Team.objects.filter(memberships__user=user,
                               memberships__role__in=roles_allowed(action))


def team_ids_where(user, action: Action) -> list[int]:
    return list(teams_where(user, action).values_list("id", flat=True))


def actions_by_team(user) -> dict[int, frozenset[Action]]:
    """Every team the user belongs to → what they may do there (for pages that show many
    teams' rows: one query, then ``allowed_in``)."""
    if not _is_user(user):
        return {}
    rows = Membership.objects.filter(user=user).values_list("team_id", "role")
    return {team_id: ALLOWED.get(role, frozenset()) for team_id, role in rows}


# -- what belongs to which team: the path from a model to its team -------------------------

# ``<app_label>.<model>`` → the lookup from a row to its team's id ("pk" for Team itself).
TEAM_PATHS = {
    "runs.team": "pk", "runs.membership": "team", "runs.apikey": "team",
    "runs.policy": "team", "runs.rule": "policy__team", "runs.agent": "team",
    "runs.mcpserver": "team", "runs.httptool": "team",
    "runs.knowledgedocument": "agent__team", "runs.knowledgechunk": "agent__team",
    "runs.run": "team", "runs.step": "run__team", "runs.toolcall": "run__team",
    "runs.escalation": "team", "runs.auditevent": "team", "runs.teamdailyspend": "team",
    "runs.webhookdelivery": "run__team", "runs.notificationtarget": "team",
    "runs.notificationdelivery": "team", "runs.reviewitem": "team",
    "runs.confidencelabel": "team",
}


def team_path(model: type[Model]) -> str | None:
    """The lookup from ``model``'s rows to their team, or None for what belongs to no team
    (the model catalogue, users, groups…)."""
    return TEAM_PATHS.get(model._meta.label_lower)


def scoped(queryset: QuerySet, user, action: Action = Action.ADMINISTER) -> QuerySet:
    """``queryset`` narrowed to the rows of the teams where ``user`` may ``action``. Rows of
    no team are a superuser's only: for anyone else the result is empty (fail closed)."""
    if _is_user(user) and user.is_superuser:
        return queryset
    path = team_path(queryset.model)
    if path is None:
        return queryset.none()
    lookup = "pk__in" if path == "pk" else f"{path}__in"
    return queryset.filter(**{lookup: team_ids_where(user, action)})


# -- Django admin: model permissions for team admins --------------------------------------

# What a team admin may do in Django admin, per model (always within their teams: the rows
# are narrowed by ``admin_base.TeamScopedAdmin``). History is read-only for everyone.
CRUD = ("view", "add", "change", "delete")
TEAM_ADMIN_MODEL_PERMS: dict[str, tuple[str, ...]] = {
    "team": ("view", "change"),  # creating and deleting teams is a superuser's
    "membership": CRUD, "policy": CRUD, "rule": CRUD, "agent": CRUD, "mcpserver": CRUD,
    "httptool": CRUD, "knowledgedocument": CRUD, "notificationtarget": CRUD,
    "apikey": CRUD,  # created and revoked; ApiKeyAdmin never lets a key be edited
    "webhookdelivery": ("view",), "notificationdelivery": ("view",), "run": ("view",),
    "step": ("view",), "escalation": ("view",), "toolcall": ("view",),
    "teamdailyspend": ("view",),
}
TEAM_ADMIN_PERMS = frozenset(f"runs.{verb}_{model}" for model, verbs in
                             TEAM_ADMIN_MODEL_PERMS.items() for verb in verbs)


def administers_any(user) -> bool:
    if not _is_user(user):
        return False
    cached = getattr(user, "_agentdesk_team_admin", None)
    if cached is None:  # asked once per request object (admin asks for every model)
        cached = Membership.objects.filter(user=user, role=Role.ADMIN).exists()
        user._agentdesk_team_admin = cached
    return cached


class TeamAdminBackend(BaseBackend):
    """Gives a team admin (``Membership.role == admin``) the model permissions of
    ``TEAM_ADMIN_PERMS`` — no group to keep in sync: the membership is the grant, and
    removing it removes them. Which rows those permissions reach is ``scoped``'s answer.
    Being a team admin also makes the user staff (``Membership.save``), so they can open
    /admin/ at all; a staff user who is no team admin (any more) sees nothing there."""

    def has_perm(self, user_obj, perm: str, obj=None) -> bool:
        return perm in TEAM_ADMIN_PERMS and administers_any(user_obj)

    def has_module_perms(self, user_obj, app_label: str) -> bool:
        return app_label == "runs" and administers_any(user_obj)

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        return set(TEAM_ADMIN_PERMS) if administers_any(user_obj) else set()
