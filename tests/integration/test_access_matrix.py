"""The access matrix: every console URL (the URLconf, walked), every admin page (each
registered ModelAdmin: changelist, add, change, delete, history), every API operation (the
OpenAPI schema) and every websocket route (``runs.routing``) × every persona (anonymous;
viewer, operator and admin of team A; operator of team B; a superuser; team A's API keys,
one per scope; a revoked key) against the classification tables below.

A URL, admin page, operation or route missing from the tables fails ("unclassified: …"):
a new URL must say who may open it. Object URLs are filled with team A's objects, and
again with team B's, so each persona is checked across the tenant line too. Besides the
status, every page a persona may read is searched for the other team's marker (a leak),
and every refused request that would change something is checked to have changed nothing.

Outcomes: allowed, 302 to the console login, 302 to the admin login, 400 (a form that
offers no such choice), 401, 403, 404, websocket rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from asgiref.sync import async_to_sync
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.management import call_command
from django.urls import get_resolver, reverse

from runs import enqueue
from runs.api.app import api
from runs.routing import websocket_urlpatterns

from .access_matrix_data import (
    ADMIN_LOGIN,
    ALLOWED,
    KEY_SCOPES,
    LOGIN,
    MARK,
    PERSONAS,
    REJECTED,
    STAFF,
    TEAMS,
    USER_PERSONAS,
    Matrix,
    World,
    build_world,
    may,
    may_somewhere,
    object_of,
    outcome,
    state,
    walk,
)
from .test_live import connect


@dataclass(frozen=True)
class Guard:
    """Who gets past one URL (or admin site page, or API operation).

    guard: public (everyone) | login (any logged-in user) | object (the action on the
    object's team; not seeing the team: 404) | somewhere (the action in some team) |
    form (somewhere, then the object is a form choice: another team's is a 400) | staff
    (Django admin's own pages) | token (a bearer token of its own: /metrics) | scope (the
    API: a key of the object's team with the action's scope)."""

    guard: str
    action: str = "view"
    obj: str = ""  # escalation | run | review | agent: fills the URL or the data
    data: tuple[tuple[str, str], ...] = ()  # POST data; "{obj}" is the object's id
    ok: tuple[int, ...] = (200,)  # the statuses that count as allowed
    fresh: bool = False  # it changes its object: a new one per request
    own_client: bool = False  # it logs the client out
    staff_outcome: str = ALLOWED
    others: str = ""  # for staff pages: what non-staff get (default: the admin login)
    everyone: str = ""  # for public URLs: the one outcome everybody gets (default: allowed)
    fill: str = ""  # for URLs with other parameters: the URL requested


ESC, RUN = "escalation", "run"
LIST = Guard("login")
# The console (and the pages beside it) by URL pattern and method.
CONSOLE: dict[tuple[str, str], Guard] = {
    ("", "GET"): Guard("public", ok=(302,)),  # → /inbox/
    ("inbox/", "GET"): LIST,
    ("inbox/bulk/", "POST"): Guard("somewhere", "decide", ESC, (("action", "reject"),
                                   ("ids", "{obj}"), ("message", "no")), (302,), fresh=True),
    ("escalations/<int:escalation_id>/", "GET"): Guard("object", "view", ESC),
    ("escalations/<int:escalation_id>/decide/", "POST"): Guard(
        "object", "decide", ESC, (("action", "reject"), ("message", "no")), (302,), True),
    ("escalations/<int:escalation_id>/claim/", "GET"): Guard("object", "view", ESC),
    ("escalations/<int:escalation_id>/claim/", "POST"): Guard("object", "claim", ESC,
                                                              ok=(302,), fresh=True),
    ("escalations/<int:escalation_id>/release/", "POST"): Guard("object", "claim", ESC,
                                                                ok=(302,), fresh=True),
    ("escalations/<int:escalation_id>/assign/", "GET"): Guard("object", "view", ESC),
    ("escalations/<int:escalation_id>/assign/", "POST"): Guard(
        "object", "assign", ESC, (("assign_me", "1"),), (302,), True),
    ("runs/", "GET"): LIST,
    ("runs/new/", "GET"): Guard("somewhere", "submit"),
    ("runs/new/", "POST"): Guard("form", "submit", "agent",
                                 (("agent", "{obj}"), ("message", "hello")), (302,)),
    ("runs/<int:run_id>/", "GET"): Guard("object", "view", RUN),
    ("runs/<int:run_id>/cancel/", "POST"): Guard("object", "cancel", RUN, ok=(302,),
                                                 fresh=True),
    ("dashboard/", "GET"): LIST,
    ("audit/", "GET"): LIST,
    ("calibration/", "GET"): LIST,
    ("calibration/apply/", "POST"): Guard("object", "administer", "agent", (
        ("agent", "{obj}"), ("tier", "small"), ("threshold", "0.5")), (302,)),
    ("review/", "GET"): LIST,
    ("review/<int:item_id>/", "POST"): Guard("object", "review", "review",
                                             (("verdict", "approve"),), (302,), True),
    ("healthz", "GET"): Guard("public", ok=(200, 503)),
    ("metrics", "GET"): Guard("token"),
    ("accounts/login/", "GET"): Guard("public"),
    ("accounts/logout/", "POST"): Guard("public", own_client=True, everyone=LOGIN),
    ("api/v1/openapi.json", "GET"): Guard("public"),
    ("api/v1/docs", "GET"): Guard("public"),
    ("api/v1/", "GET"): Guard("public", ok=(404,)),  # ninja's root: nothing there
    # Django admin's own pages (the model pages are the ADMIN table's)
    ("admin/", "GET"): Guard("staff"),
    ("admin/login/", "GET"): Guard("public", ok=(200, 302)),
    # logged out, staff land on the login page; anyone else is sent to the admin's index
    ("admin/logout/", "POST"): Guard("staff", own_client=True, staff_outcome=LOGIN,
                                     others="302 → /admin/"),
    ("admin/password_change/", "GET"): Guard("staff"),
    ("admin/password_change/done/", "GET"): Guard("staff"),
    # a key's name shows in the answer: another team's would be a leak
    ("admin/autocomplete/", "GET"): Guard(
        "staff", fill="/admin/autocomplete/?app_label=runs&model_name=auditevent"
                      "&field_name=api_key"),
    ("admin/jsi18n/", "GET"): Guard("staff"),
    # no model has a page outside admin: "view on site" has nowhere to go
    ("admin/r/<path:content_type_id>/<path:object_id>/", "GET"): Guard(
        "staff", obj="agent", staff_outcome="404"),
    ("admin/^(?P<app_label>auth|axes|runs)/$", "GET"): Guard("staff", fill="/admin/runs/"),
    ("admin/(?P<url>.*)$", "GET"): Guard("staff", fill="/admin/no-such-page/",
                                         staff_outcome="404"),
}

PAGES = ("changelist", "add", "change", "delete", "history")
OBJECT_PAGES = {"change", "delete", "history"}
ALL, READ = frozenset(PAGES), frozenset({"changelist", "change", "history"})


@dataclass(frozen=True)
class AdminModel:
    """The admin pages of one model a team admin (staff through the membership alone, of
    team A) and a superuser open. ``per_team``: its rows belong to a team, and a team
    admin gets a 404 for another team's."""

    team_admin: frozenset[str]
    superuser: frozenset[str] = ALL
    per_team: bool = True


NONE = frozenset()
ADMIN: dict[str, AdminModel] = {
    "runs.team": AdminModel(READ),  # their own team: settings, members, secret rotation
    "runs.policy": AdminModel(ALL), "runs.agent": AdminModel(ALL),
    "runs.mcpserver": AdminModel(ALL), "runs.httptool": AdminModel(ALL),
    "runs.knowledgedocument": AdminModel(ALL), "runs.apikey": AdminModel(ALL),
    "runs.notificationtarget": AdminModel(ALL),
    # history: read-only for everyone
    **{label: AdminModel(READ, READ) for label in (
        "runs.run", "runs.step", "runs.escalation", "runs.toolcall", "runs.teamdailyspend",
        "runs.webhookdelivery", "runs.notificationdelivery")},
    # of no team: a superuser's
    "runs.modelprofile": AdminModel(NONE, per_team=False),
    "auth.user": AdminModel(NONE, per_team=False),
    "auth.group": AdminModel(NONE, per_team=False),
    **{label: AdminModel(NONE, ALL - {"add"}, per_team=False) for label in (
        "axes.accessattempt", "axes.accesslog", "axes.accessfailurelog")},
}
# A model admin's URLs besides its five pages, by URL name ("" : the unnamed ones).
ADMIN_EXTRAS = {
    "": Guard("staff", ok=(302,)),  # <id>/ → <id>/change/ (which then decides)
    "auth_user_password_change": Guard("superuser"),
}


@dataclass(frozen=True)
class ApiOp:
    scope: str
    obj: str = ""
    body: dict | None = None
    ok: tuple[int, ...] = (200,)


API: dict[tuple[str, str], ApiOp] = {
    ("POST", "/api/v1/runs"): ApiOp("submit", body={"agent": "support-refunds",
                                                    "input": {"message": "hello"}}, ok=(201,)),
    ("GET", "/api/v1/runs"): ApiOp("read"),
    ("GET", "/api/v1/runs/{run_id}"): ApiOp("read", RUN),
    ("POST", "/api/v1/runs/{run_id}/cancel"): ApiOp("submit", RUN),
    ("GET", "/api/v1/escalations"): ApiOp("read"),
    ("POST", "/api/v1/escalations/{escalation_id}/resolve"): ApiOp(
        "resolve", ESC, {"action": "reject", "message": "no"}),
    ("POST", "/api/v1/escalations/{escalation_id}/assign"): ApiOp("resolve", ESC,
                                                                  {"user": None}),
    ("GET", "/api/v1/agents"): ApiOp("read"),
}
WEBSOCKETS: dict[str, Guard] = {
    "ws/inbox/": Guard("login"),
    "ws/runs/<int:run_id>/": Guard("object", "view", RUN),
}


# -- the world, once per module ------------------------------------------------------------


@pytest.fixture(scope="module")
def built(django_db_setup, django_db_blocker):
    """Built once and committed (the websocket consumers read it from other threads);
    flushed at the end as every transactional test's data is. Each HTTP test runs in a
    transaction rolled back after it (``django_db``), so what one changes the next never
    sees; the websocket test, last, is transactional (consumers write from their threads)."""
    with django_db_blocker.unblock():
        cache.clear()
        saved = enqueue.advance_run_on_commit
        enqueue.advance_run_on_commit = lambda run_id: None  # no worker: nothing resumes
        try:
            yield build_world()
        finally:
            enqueue.advance_run_on_commit = saved
            call_command("flush", verbosity=0, interactive=False)
            cache.clear()


@pytest.fixture
def world(built: World) -> World:
    built.clients.clear()  # logins are sessions: rolled back with the previous test
    return built


@pytest.fixture(autouse=True)
def metrics_token(settings):
    settings.METRICS_TOKEN = "matrix-metrics-token"  # nobody here holds it


# -- the routes, from the URLconf, the admin site, the schema and the websocket routing --


def schema_ops() -> list[tuple[str, str]]:
    paths = api.get_openapi_schema()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops]


def unclassified() -> list[str]:
    admin_prefixes = {f"admin/{m._meta.app_label}/{m._meta.model_name}/": m._meta.label_lower
                      for m in admin.site._registry}
    api_paths = {path for _, path in schema_ops()}
    console = {pattern for pattern, _ in CONSOLE}
    missing = []
    for pattern, namespace, name in walk(get_resolver().url_patterns):
        prefix = next((p for p in admin_prefixes if pattern.startswith(p)), None)
        if prefix is not None:
            label = admin_prefixes[prefix]
            page = (name or "").removeprefix(label.replace(".", "_") + "_")
            if label not in ADMIN:
                missing.append(f"unclassified: admin model {label} ({pattern})")
            elif page not in PAGES and (name or "") not in ADMIN_EXTRAS:
                missing.append(f"unclassified: admin URL {pattern} ({name})")
        elif namespace == "api-v1" and re.sub(r"<\w+:(\w+)>", r"{\1}", "/" + pattern) \
                in api_paths:
            continue
        elif pattern not in console:
            missing.append(f"unclassified: URL {pattern!r} ({name})")
    missing += [f"unclassified: admin model {m._meta.label_lower}" for m in admin.site._registry
                if m._meta.label_lower not in ADMIN]
    missing += [f"unclassified: API operation {m} {p}" for m, p in schema_ops()
                if (m, p) not in API]
    missing += [f"unclassified: websocket route {str(p.pattern)!r}"
                for p in websocket_urlpatterns if str(p.pattern) not in WEBSOCKETS]
    walked = {pattern for pattern, _, _ in walk(get_resolver().url_patterns)}
    missing += [f"classified but gone: {pattern}" for pattern in console - walked]
    return missing


@pytest.mark.django_db
def test_every_url_page_operation_and_route_is_classified(capsys):
    assert not unclassified(), "\n".join(unclassified())
    admin_pages = len(ADMIN) * len(PAGES) + sum(
        1 for m in admin.site._registry for p in walk(admin.site._registry[m].urls)
        if (p[2] or "") in ADMIN_EXTRAS)
    routes = {"console URLs (× method)": len(CONSOLE), "admin pages": admin_pages,
              "API operations": len(API), "websocket routes": len(WEBSOCKETS)}
    total = sum(routes.values())
    with capsys.disabled():
        print(f"\naccess matrix: {total} routes × {len(PERSONAS)} personas = "
              f"{total * len(PERSONAS)} cells (team A's objects; object routes again with "
              f"team B's) — {', '.join(f'{n} {k}' for k, n in routes.items())}")


# -- what each persona should get ----------------------------------------------------------


def expected(guard: Guard, persona: str, team: str) -> str:
    user = persona in USER_PERSONAS and persona != "anonymous"
    if guard.guard == "public":
        return guard.everyone or ALLOWED
    if guard.guard == "token":
        return "401"
    if guard.guard in ("staff", "superuser"):
        if persona not in STAFF:
            return guard.others or ADMIN_LOGIN
        if guard.guard == "superuser" and persona != "superuser":
            return "403"
        return guard.staff_outcome
    if not user:
        return LOGIN
    if guard.guard == "login":
        return ALLOWED
    if guard.guard in ("somewhere", "form"):
        if not may_somewhere(persona, guard.action):
            return "403"
        return ALLOWED if guard.guard == "somewhere" or may(persona, guard.action, team) \
            else "400"
    if not may(persona, "view", team):
        return "404"
    return ALLOWED if may(persona, guard.action, team) else "403"


def fill(pattern: str, guard: Guard, obj) -> str:
    """The URL to request: the pattern with the object's id, or the guard's own URL."""
    if guard.fill:
        return guard.fill
    if pattern.startswith("admin/r/"):
        return f"/admin/r/{ContentType.objects.get_for_model(obj).pk}/{obj.pk}/"
    return "/" + re.sub(r"<int:\w+>", str(getattr(obj, "pk", "")), pattern)


# -- the console and Django admin's own pages ----------------------------------------------


@pytest.mark.django_db
def test_console_urls(world, capsys):
    matrix = Matrix("console URLs", capsys)
    for (pattern, method), guard in CONSOLE.items():
        for team in TEAMS if guard.obj else ("A",):
            for persona in PERSONAS:
                obj = object_of(world, guard.obj, team, guard.fresh) if guard.obj else None
                before = state(obj) if guard.fresh else None
                client = world.fresh_client(persona) if guard.own_client \
                    else world.client(persona)
                url = fill(pattern, guard, obj)
                data = {k: v.replace("{obj}", str(obj.pk)) for k, v in guard.data}
                resp = getattr(client, method.lower())(url, data)
                want = expected(guard, persona, team)
                matrix.check(f"{method} /{pattern} (team {team})", persona, want,
                             outcome(resp, guard.ok), resp)
                if guard.fresh and not may(persona, guard.action, team) \
                        and state(obj) != before:
                    matrix.wrong.append(f"{method} /{pattern} as {persona} changed {obj}")
    matrix.done()


@pytest.mark.django_db
def test_team_members_see_their_own_teams_work(world):
    for persona in ("viewer", "operator", "admin", "superuser"):
        for url in ("/inbox/", "/runs/"):
            page = world.client(persona).get(url).content.decode()
            assert MARK["A"] in page, (persona, url)
    assert MARK["B"] in world.client("operator_b").get("/inbox/").content.decode()


# -- every registered ModelAdmin: changelist, add, change, delete, history -----------------


def admin_expected(spec: AdminModel, page: str, persona: str, team: str) -> str:
    if persona not in STAFF:
        return ADMIN_LOGIN
    if persona == "superuser":
        return ALLOWED if page in spec.superuser else "403"
    if page in OBJECT_PAGES and spec.per_team and team == "B":
        return "404"  # another team's row: as if it did not exist
    return ALLOWED if page in spec.team_admin else "403"


@pytest.mark.django_db
def test_admin_pages(world, capsys):
    matrix = Matrix("admin pages", capsys)
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        spec = ADMIN[label]
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        for page in PAGES:
            for team in TEAMS if page in OBJECT_PAGES else ("A",):
                obj = world.objects[label][team]
                url = reverse(f"{info}_{page}", args=[obj.pk] if page in OBJECT_PAGES else [])
                for persona in PERSONAS:
                    resp = world.client(persona).get(url)
                    matrix.check(f"{url} ({label} {page}, team {team})", persona,
                                 admin_expected(spec, page, persona, team),
                                 outcome(resp, (200,)), resp)
        for p in walk(model_admin.urls):
            extra = ADMIN_EXTRAS.get(p[2] or "")
            if extra is None:
                continue
            for team in TEAMS:
                obj = world.objects[label][team]
                url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/" + re.sub(
                    r"<(?:path|int):\w+>|<id>", str(obj.pk), p[0])
                for persona in PERSONAS:
                    resp = world.client(persona).get(url)
                    matrix.check(url, persona, expected(extra, persona, team),
                                 outcome(resp, extra.ok), resp)
    matrix.done()


# -- the API: every operation in the schema × session personas and keys -------------------


def api_expected(op: ApiOp, persona: str, team: str) -> str:
    if persona in USER_PERSONAS or persona == "key_revoked":
        return "401"  # a session is no key; a revoked key is none either
    if op.scope not in KEY_SCOPES[persona]:  # the key's one scope (see access_matrix_data)
        return "403"
    return "404" if team == "B" else ALLOWED  # team A's keys never reach team B


@pytest.mark.django_db
def test_api_operations(world, capsys):
    matrix = Matrix("API operations", capsys)
    for (method, path), op in API.items():
        for team in TEAMS if op.obj else ("A",):
            for persona in PERSONAS:
                obj = object_of(world, op.obj, team, new=method == "POST") if op.obj else None
                before = state(obj) if obj is not None else None
                url = re.sub(r"\{\w+\}", str(getattr(obj, "pk", "")), path)
                client = world.client(persona)
                resp = client.get(url) if method == "GET" else client.post(
                    url, op.body or {}, content_type="application/json")
                want = api_expected(op, persona, team)
                matrix.check(f"{method} {path} (team {team})", persona, want,
                             outcome(resp, op.ok), resp)
                if obj is not None and want != ALLOWED and state(obj) != before:
                    matrix.wrong.append(f"{method} {path} as {persona} changed {obj}")
    matrix.done()


# -- websockets ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # last: it flushes the database after it
def test_websocket_routes(world, capsys):
    matrix = Matrix("websocket routes", capsys)
    for pattern, guard in WEBSOCKETS.items():
        for team in TEAMS if guard.obj else ("A",):
            obj = object_of(world, guard.obj, team, False) if guard.obj else None
            path = "/" + re.sub(r"<int:\w+>", str(getattr(obj, "pk", "")), pattern)
            for persona in PERSONAS:
                user = world.users.get(persona) if persona != "anonymous" else None
                comm = connect(path, user)

                async def attempt(comm=comm) -> bool:
                    connected, _ = await comm.connect()
                    if connected:
                        await comm.disconnect()
                    return connected

                got = ALLOWED if async_to_sync(attempt)() else REJECTED
                want = expected(guard, persona, team)
                matrix.check(f"websocket {path} (team {team})", persona,
                             REJECTED if want in (LOGIN, "404") else want, got)
    matrix.done()

