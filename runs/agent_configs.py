"""An agent as a submission reads it: the row (with its policy) and the policy snapshot its
runs start with, rebuilt only when the rows they come from change.

A submission is the API's hot path, and building a snapshot (the policy, its models and
rules, through the ORM) was a third of its CPU. What the snapshot is built from — every
column of the agent, its policy, the policy's models and enabled rules — is read in one
statement, the fingerprint, so an edit by any means (admin, a queryset update, raw SQL, in
any process) is in the next run's snapshot; only the building is skipped while the
fingerprint is unchanged. On Postgres a submission does not even read it first: the run's
INSERT carries the fingerprint this process last read as its condition
(``AgentConfig.guard``), and only when that inserted nothing is the agent read again.
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from .errors import NotFound
from .models import Agent, ModelProfile, Policy, PolicySnapshotRecord, Rule, Team
from .statements import Statement


class AgentConfig:
    """An agent row (with its policy) and the policy snapshot runs of it start with, as
    this process last read them, with the fingerprint they were read under."""

    def __init__(self, fingerprint: tuple[Any, ...], agent: Agent,
                 guard: Statement | None) -> None:
        self.fingerprint = fingerprint
        self.agent = agent
        # On Postgres, a condition true only while the agent's rows are still what this
        # config was built from (the fingerprint is one digest), for the run's INSERT to
        # carry (``statements.insert_pair(guard=…)``): the write and the check are one
        # statement. Built once here, not per submission.
        self.guard = guard
        self._snapshot_id: int | None = None

    def snapshot_id(self) -> int:
        """The stored ``Policy.snapshot()`` (``PolicySnapshotRecord``) runs of this agent
        start with, built and looked up once per fingerprint. The id is remembered only
        once the transaction that found or wrote the row has committed: a row rolled back
        with its transaction is never pointed at."""
        if self._snapshot_id is not None:
            return self._snapshot_id
        data = self.agent.policy.snapshot().model_dump(mode="json")
        record = PolicySnapshotRecord.of(data)
        transaction.on_commit(lambda: setattr(self, "_snapshot_id", record.pk))
        return record.pk


# (database alias, team id, agent slug) → what a submission last read of that agent.
_CONFIGS: dict[tuple[str, int, str], AgentConfig] = {}
_CONFIGS_MAX = 1_000
_CONFIG_SQL: dict[str, str] = {}  # by database vendor


def remembered(team: Team, agent_slug: str) -> AgentConfig | None:
    """What this process last read of the agent, to write under its ``guard`` — on
    Postgres, where there is one; elsewhere None (read it: ``config_for``)."""
    config = _CONFIGS.get((DEFAULT_DB_ALIAS, team.pk, agent_slug))
    return config if config is not None and config.guard is not None else None


def config_for(team: Team, agent_slug: str) -> AgentConfig:
    """The enabled agent ``agent_slug`` of ``team`` and its policy snapshot (NotFound if
    none). Every submission reads, in one statement (``_config_sql``), every column of what
    the snapshot is built from — the agent, its policy, the policy's models in the catalogue
    and its enabled rules — as text: the fingerprint. Only when that differs from what this
    process built the agent and snapshot from last time (an edit, by any means — admin, a
    queryset update, raw SQL — in any process) are they read and built again through the
    ORM. So a submission always snapshots the rows as they are, without building the same
    snapshot over again. The agent is shared by the requests that use it: read it, never
    change it."""
    connection = connections[DEFAULT_DB_ALIAS]
    key = (connection.alias, team.pk, agent_slug)
    with connection.cursor() as cursor:
        cursor.execute(_config_sql(connection), _config_params(team.pk, agent_slug))
        # Postgres: one digest, NULL when there is no row
        fingerprint = tuple(tuple(row) for row in cursor.fetchall() if row[0] is not None)
    if not fingerprint:  # no such agent, or not this team's, or disabled
        raise NotFound(f"Unknown agent {agent_slug!r} for team {team.slug!r}.")
    config = _CONFIGS.get(key)
    if config is not None and config.fingerprint == fingerprint:
        return config
    agent = (Agent.objects.select_related("policy")
             .filter(team=team, slug=agent_slug, enabled=True).first())
    if agent is None:  # gone since the fingerprint was read
        raise NotFound(f"Unknown agent {agent_slug!r} for team {team.slug!r}.")
    if len(_CONFIGS) >= _CONFIGS_MAX:
        _CONFIGS.clear()
    guard = None
    if connection.vendor == "postgresql":
        [(digest,)] = fingerprint
        guard = Statement(f"({_config_sql(connection)}) = %s",
                          (*_config_params(team.pk, agent_slug), digest))
    config = _CONFIGS[key] = AgentConfig(fingerprint, agent, guard)
    return config


def _config_sql(connection: BaseDatabaseWrapper) -> str:
    """The fingerprint query of ``config_for``, built once per database from the models'
    own tables and fields (so a new column is in it): UNION ALL of the agent joined to its
    policy (kind 0), the policy's models (1) and its enabled rules (2), every column cast to
    text and padded with NULLs to one width; on Postgres the MD5 of those rows, in one
    value (``AgentConfig.guard`` compares it inside an INSERT). Parameters:
    ``_config_params``. Only table and column names go into the text; every value is a
    parameter."""
    sql = _CONFIG_SQL.get(connection.vendor)
    if sql is not None:
        return sql
    q = connection.ops.quote_name

    def table(model) -> str:
        return q(model._meta.db_table)

    def column(model, alias: str, name: str) -> str:
        return f"{alias}.{q(model._meta.get_field(name).column)}"

    def columns(model, alias: str) -> list[str]:
        return [f"CAST({alias}.{q(f.column)} AS TEXT)" for f in model._meta.concrete_fields]

    agent = (f"{table(Agent)} a JOIN {table(Policy)} p "
             f"ON {column(Policy, 'p', 'id')} = {column(Agent, 'a', 'policy')}")
    where = (f"{column(Agent, 'a', 'team')} = %s AND {column(Agent, 'a', 'slug')} = %s "
             f"AND {column(Agent, 'a', 'enabled')} = %s")
    models = (f"{table(ModelProfile)} m ON {column(ModelProfile, 'm', 'name')} "
              f"IN ({column(Policy, 'p', 'small_model')}, {column(Policy, 'p', 'large_model')})")
    rules = (f"{table(Rule)} r ON {column(Rule, 'r', 'policy')} = {column(Policy, 'p', 'id')} "
             f"AND {column(Rule, 'r', 'enabled')} = %s")
    kinds = [columns(Agent, "a") + columns(Policy, "p"), columns(ModelProfile, "m"),
             columns(Rule, "r")]
    width = max(map(len, kinds))
    selects = [", ".join([str(n), *cols, *["NULL"] * (width - len(cols))])
               for n, cols in enumerate(kinds)]
    sql = (f"SELECT {selects[0]} FROM {agent} WHERE {where} "  # nosec B608  # names only
           f"UNION ALL SELECT {selects[1]} FROM {agent} JOIN {models} WHERE {where} "
           f"UNION ALL SELECT {selects[2]} FROM {agent} JOIN {rules} WHERE {where}")
    if connection.vendor == "postgresql":
        row = "CAST(f AS TEXT)"
        # the statement above, built from names only
        sql = f"SELECT md5(string_agg({row}, '|' ORDER BY {row})) FROM ({sql}) f"  # nosec B608
    else:
        sql += " ORDER BY 1, 2"
    _CONFIG_SQL[connection.vendor] = sql
    return sql


def _config_params(team_id: int, agent_slug: str) -> tuple[Any, ...]:
    """The parameters of ``_config_sql``, in the order its placeholders come."""
    where = (team_id, agent_slug, True)
    return where * 2 + (True, *where)  # the rules' join comes before the third WHERE
