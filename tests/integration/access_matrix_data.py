"""The world the access matrix runs in: two teams (A = demo, B = other) with one of every
kind of object each, the personas, and fresh objects for the requests that change things.

Team B's objects carry ``MARK_B`` in their names and texts, team A's ``MARK_A``: a page
that shows one to a persona with no role in that team is a leak (``test_access_matrix``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLResolver

from runs import api_keys, knowledge
from runs.demo import seed_demo
from runs.models import (
    Agent,
    Escalation,
    HttpTool,
    McpServer,
    Membership,
    ModelProfile,
    NotificationDelivery,
    NotificationTarget,
    Policy,
    ReviewItem,
    Rule,
    Run,
    Step,
    Team,
    TeamDailySpend,
    ToolCall,
    WebhookDelivery,
)

from .console_data import PASSWORD, escalation, waiting_run

MARK = {"A": "ZEBRA-A-7c1", "B": "ZEBRA-B-9f4"}
TEAMS = ("A", "B")

USER_PERSONAS = ("anonymous", "viewer", "operator", "admin", "operator_b", "superuser")
KEY_PERSONAS = ("key_submit", "key_read", "key_resolve", "key_revoked")
PERSONAS = USER_PERSONAS + KEY_PERSONAS

# Each user persona's role in each team. The spec the code is held to: what a role may do.
ROLES: dict[str, dict[str, str]] = {
    "anonymous": {}, "viewer": {"A": "viewer"}, "operator": {"A": "operator"},
    "admin": {"A": "admin"}, "operator_b": {"B": "operator"},
    "superuser": {"A": "superuser", "B": "superuser"},
}
OPERATE = {"view", "submit", "claim", "decide", "assign", "cancel", "review"}
CAN = {"viewer": {"view"}, "operator": OPERATE,
       "admin": OPERATE | {"extend_budget", "administer"},
       "superuser": OPERATE | {"extend_budget", "administer"}}
STAFF = {"admin", "superuser"}  # admin: staff through its team admin membership alone
KEY_SCOPES = {"key_submit": ["submit"], "key_read": ["read"], "key_resolve": ["resolve"],
              "key_revoked": ["submit", "read", "resolve"]}


# The outcomes a cell can have (besides a status code: "400", "401", "403", "404"…).
ALLOWED, LOGIN, ADMIN_LOGIN, REJECTED = "allowed", "302 login", "302 admin login", "ws rejected"


def may(persona: str, action: str, team: str) -> bool:
    role = ROLES.get(persona, {}).get(team)
    return role is not None and action in CAN[role]


def may_somewhere(persona: str, action: str) -> bool:
    return any(may(persona, action, team) for team in TEAMS)


@dataclass
class World:
    teams: dict[str, Team]
    users: dict[str, object]
    keys: dict[str, str]  # persona → raw key
    agents: dict[str, Agent]
    escalations: dict[str, Escalation]  # read-only pages (never changed)
    runs: dict[str, Run]
    reviews: dict[str, ReviewItem]
    objects: dict[str, dict[str, object]] = field(default_factory=dict)  # admin: label → team
    clients: dict[str, Client] = field(default_factory=dict)

    def client(self, persona: str) -> Client:
        if persona not in self.clients:
            self.clients[persona] = self.fresh_client(persona)
        return self.clients[persona]

    def fresh_client(self, persona: str) -> Client:
        user = self.users.get(persona)
        if persona in self.keys:
            client = Client(HTTP_AUTHORIZATION=f"Bearer {self.keys[persona]}")
        else:
            client = Client()
        if user is not None:
            client.force_login(user)
        return client


def review_item(team: Team, mark: str) -> ReviewItem:
    agent = Agent.objects.get(team=team, slug="support-refunds")
    run = Run.objects.create(team=team, agent=agent, input={"message": f"review {mark}"},
                             status="succeeded", answer=f"answer {mark}", state={},
                             policy_snapshot=agent.policy.snapshot().model_dump(mode="json"))
    return ReviewItem.objects.create(team=team, run=run, agent=agent, step_index=0,
                                     tier="small", model="sim-small", confidence=0.93)


def fresh(kind: str, team: Team):
    """A new object for a request that changes it."""
    mark = MARK["A" if team.slug == "demo" else "B"]
    if kind == "escalation":
        return escalation(team, question=f"Approve? {mark}", message=f"refund {mark}")
    if kind == "run":
        return waiting_run(team, message=f"refund {mark}")
    if kind == "review":
        return review_item(team, mark)
    raise KeyError(kind)


def _users() -> dict[str, object]:
    users = get_user_model()
    made = {"operator": users.objects.get(username="operator"),
            "superuser": users.objects.create_superuser("root", password=PASSWORD)}
    for name, team_slug, role in (("viewer", "demo", "viewer"), ("admin", "demo", "admin"),
                                  ("operator_b", "other", "operator")):
        user = users.objects.create_user(f"matrix-{name}", password=PASSWORD)
        Membership.objects.create(user=user, team=Team.objects.get(slug=team_slug), role=role)
        made[name] = users.objects.get(pk=user.pk)  # is_staff as the membership set it
    return made


def _team_objects(team: Team, mark: str, agent: Agent, run: Run, esc: Escalation) -> dict:
    """One row of every model registered in admin, for the team."""
    policy = Policy.objects.create(team=team, name=f"policy {mark}")
    Rule.objects.create(policy=policy, name=f"rule {mark}", action="escalate",
                        conditions=[{"field": "message", "op": "contains", "value": "x"}])
    target = NotificationTarget.objects.create(team=team, name=f"target {mark}",
                                               destination="json://localhost/hook")
    doc = knowledge.index_document(agent, f"zebra-{team.slug}.md",
                                   f"# Guide {mark}\n\nHow to do it.".encode())
    key = api_keys.create_api_key(team=team, name=f"key {mark}", scopes=["read"]).key
    Step.objects.create(run=run, index=0, kind="model", name=f"step {mark}")
    return {
        "runs.team": team, "runs.policy": policy, "runs.agent": agent,
        "runs.mcpserver": McpServer.objects.create(team=team, name=f"mcp-{team.slug}",
                                                   url="http://localhost:1/mcp",
                                                   enabled=False),
        "runs.httptool": HttpTool.objects.create(
            team=team, name=f"tool_{team.slug}", description=f"tool {mark}",
            url_template="https://example.com/{id}",
            args_schema={"type": "object", "properties": {"id": {"type": "string"}}}),
        "runs.knowledgedocument": doc, "runs.apikey": key,
        "runs.notificationtarget": target,
        "runs.notificationdelivery": NotificationDelivery.objects.create(
            target=target, team=team, event="run.failed", key=f"k-{team.slug}",
            title=f"failed {mark}", body="body"),
        "runs.run": run, "runs.step": run.steps.get(), "runs.escalation": esc,
        "runs.toolcall": ToolCall.objects.create(run=run, idempotency_key=f"{run.pk}:1",
                                                 tool="lookup_order"),
        "runs.teamdailyspend": TeamDailySpend.objects.create(team=team, day=date.today()),
        "runs.webhookdelivery": WebhookDelivery.objects.create(
            run=run, event="run.succeeded", url="https://example.com/hook", payload={}),
    }


def _global_objects(users: dict) -> dict:
    access = {"user_agent": "matrix", "ip_address": "127.0.0.1", "username": "nobody",
              "http_accept": "*/*", "path_info": "/accounts/login/"}
    return {
        "runs.modelprofile": ModelProfile.objects.get(name="sim-small"),
        "auth.user": users["operator"], "auth.group": Group.objects.create(name="matrix"),
        "axes.accessattempt": AccessAttempt.objects.create(
            get_data="", post_data="", failures_since_start=1, **access),
        "axes.accesslog": AccessLog.objects.create(**access),
        "axes.accessfailurelog": AccessFailureLog.objects.create(**access),
    }


def build_world() -> World:
    seed_demo(PASSWORD)
    a = Team.objects.get(slug="demo")
    b = Team.objects.create(slug="other", name=f"Other team {MARK['B']}")
    teams = {"A": a, "B": b}
    policy_b = Policy.objects.create(team=b, name=f"support {MARK['B']}")
    agents = {"A": Agent.objects.get(team=a, slug="support-refunds"),
              "B": Agent.objects.create(team=b, slug="support-refunds",
                                        name=f"Refunds {MARK['B']}", policy=policy_b)}
    users = _users()
    keys = {}
    for persona, scopes in KEY_SCOPES.items():
        new = api_keys.create_api_key(team=a, name=persona, scopes=scopes)
        keys[persona] = new.raw
        if persona == "key_revoked":
            api_keys.revoke_api_key(new.key.pk)
    escalations = {t: fresh("escalation", teams[t]) for t in TEAMS}
    world = World(teams=teams, users=users, keys=keys, agents=agents, escalations=escalations,
                  runs={t: escalations[t].run for t in TEAMS},
                  reviews={t: fresh("review", teams[t]) for t in TEAMS})
    world.objects = {label: {"A": obj, "B": obj}  # of no team: the same row for both
                     for label, obj in _global_objects(users).items()}
    for t in TEAMS:
        esc = fresh("escalation", teams[t])  # admin's own, apart from the console's
        for label, obj in _team_objects(teams[t], MARK[t], agents[t], esc.run, esc).items():
            world.objects.setdefault(label, {})[t] = obj
    return world


# -- checking cells ------------------------------------------------------------------------


def walk(patterns, prefix: str = "", namespace: str | None = None):
    """Every URL pattern under ``patterns``: (its full route, its namespace, its name)."""
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from walk(p.url_patterns, prefix + str(p.pattern), p.namespace or namespace)
        else:
            yield prefix + str(p.pattern), namespace, p.name


def outcome(resp, ok: tuple[int, ...]) -> str:
    if resp.status_code == 302 and resp["Location"].startswith("/accounts/login/"):
        return LOGIN
    if resp.status_code == 302 and resp["Location"].startswith("/admin/login/"):
        return ADMIN_LOGIN
    if resp.status_code in ok:
        return ALLOWED
    return f"302 → {resp['Location']}" if resp.status_code == 302 else str(resp.status_code)


def leaked(persona: str, resp) -> str | None:
    """The marker of a team the persona has no role in, if the answer shows it."""
    if persona == "superuser" or resp.status_code >= 300:
        return None
    text = resp.content.decode(errors="replace")
    own = {"A"} if persona in KEY_SCOPES else set(ROLES.get(persona, {}))  # keys: team A's
    foreign = [t for t in TEAMS if t not in own]
    return next((MARK[t] for t in foreign if MARK[t] in text), None)


class Matrix:
    """Collects every cell that is not as classified, to report them all at once, and
    prints how many cells of each outcome the section checked."""

    def __init__(self, section: str, capsys) -> None:
        self.section, self.capsys = section, capsys
        self.wrong: list[str] = []
        self.seen: Counter = Counter()

    def check(self, where: str, persona: str, want: str, got: str, resp=None) -> None:
        self.seen[got] += 1
        if got != want:
            self.wrong.append(f"{where} as {persona}: {got}, expected {want}")
        elif resp is not None and (mark := leaked(persona, resp)):
            self.wrong.append(f"{where} as {persona}: shows {mark} (another team's)")

    def done(self) -> None:
        with self.capsys.disabled():
            print(f"\n{self.section}: {sum(self.seen.values())} cells — " + ", ".join(
                f"{outcome} {n}" for outcome, n in sorted(self.seen.items())))
        assert not self.wrong, f"{len(self.wrong)} cells wrong:\n" + "\n".join(self.wrong)


def object_of(world: World, kind: str, team: str, new: bool):
    """Team ``team``'s object of ``kind``; a new one when the request changes it."""
    if new and kind in ("escalation", "run", "review"):
        return fresh(kind, world.teams[team])
    return {"escalation": world.escalations, "run": world.runs, "review": world.reviews,
            "agent": world.agents}[kind][team]


def state(obj) -> tuple:
    """What a refused request must not have changed."""
    obj.refresh_from_db()
    if isinstance(obj, Escalation):
        return obj.status, obj.claimed_by_id, obj.assigned_to_id
    if isinstance(obj, Run | ReviewItem):
        return (obj.status,)
    return ()
