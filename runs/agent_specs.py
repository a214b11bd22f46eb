"""The ``AgentSpec`` an Agent row runs as: installed code, or a definition made in admin.

One place answers "what is this agent?" for everything that needs to know — submitting
(the input schema), the worker (instructions, tools, knowledge), the escalation page and
the API (tool schemas): so an agent defined in admin is runnable by form and API the
moment it is saved, with no second code path.

- An **installed** agent (``agentdesk.agents``: ``AGENTDESK_AGENTS`` paths and entry
  points) is its code's spec; its row only chooses the team, policy and name.
- An agent **defined in admin** (a row with instructions and no installed code of that
  slug) is built from the row: its instructions, its input schema (default: one
  ``message`` field), tools chosen from the installed packages' tools, the tools of its
  MCP servers and its HTTP tools; its knowledge is its documents (``runs.knowledge``).

Specs of admin-defined agents are built when asked for (a few queries), never cached
across edits: a saved change applies to the next run slice.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from agentdesk.agents import AGENTS
from agentdesk.runtime.agent import SLUG, AgentSpec
from agentdesk.runtime.tools import Tool, ToolRegistry
from agentdesk.tools.http import HttpToolConfig, http_tool
from agentdesk.tools.http import problems as http_problems

from . import callback_urls, mcp_servers
from .models import Agent, HttpTool

log = structlog.get_logger(__name__)


def code_tools() -> dict[str, Tool]:
    """Every tool of the installed agents by name (the first agent, by slug, wins a name
    two agents share): the tools an admin-defined agent may choose from."""
    found: dict[str, Tool] = {}
    for slug in sorted(AGENTS):
        for name, tool in AGENTS[slug].tools.tools.items():
            found.setdefault(name, tool)
    return found


def installed(slug: str) -> AgentSpec | None:
    return AGENTS.get(slug)


def spec_for(agent: Agent) -> AgentSpec | None:
    """What ``agent`` runs as; None when it has neither code nor a definition."""
    code = AGENTS.get(agent.slug)
    if code is not None or not agent.defined_in_admin:
        return code
    return AgentSpec(
        slug=agent.slug,
        name=agent.name,
        instructions=agent.instructions,
        tools=_registry(agent),
        input_schema=agent.input_schema or None,
    )


def http_config(row: HttpTool) -> HttpToolConfig:
    return HttpToolConfig(
        name=row.name, description=row.description, method=row.method,
        url_template=row.url_template, args_schema=row.args_schema,
        header_env=dict(row.header_env or {}), read_only=row.read_only,
        timeout_s=row.timeout_s,
    )


def route_http_tool(url: str) -> list[callback_urls.Destination]:
    """Where an HTTP tool's request may go: the webhooks' SSRF guard (``callback_urls``)."""
    return callback_urls.destinations(url, callback_urls.HTTP_TOOLS)


def _registry(agent: Agent) -> ToolRegistry:
    registry = ToolRegistry()
    catalogue = code_tools()
    chosen = [catalogue[name] for name in agent.code_tools or () if name in catalogue]
    _add_all(registry, agent, chosen)
    for server in agent.mcp_servers.filter(enabled=True).order_by("name"):
        _add_all(registry, agent, mcp_servers.tools_of(server))
    for row in agent.http_tools.order_by("name"):
        _add_all(registry, agent, [http_tool(http_config(row), route=route_http_tool)])
    return registry


def _add_all(registry: ToolRegistry, agent: Agent, tools: Iterable[Tool]) -> None:
    for tool in tools:
        if tool.name in registry.tools:  # admin refuses this; a later edit elsewhere may not
            log.warning("two tools of one agent share a name; the first is kept",
                        agent=agent.slug, tool=tool.name)
            continue
        registry.add(tool)


# -- what makes a definition valid (admin's form errors) -----------------------------------


def definition_problems(
    *, team_id: int | None, slug: str, instructions: str, input_schema: dict | None,
    code_tool_names: list[str], mcp_server_rows: list, http_tool_rows: list[HttpTool],
) -> dict[str, list[str]]:
    """Why an Agent row cannot be saved as it is, by field (empty when it can)."""
    found: dict[str, list[str]] = {}

    def problem(field: str, message: str) -> None:
        found.setdefault(field, []).append(message)

    if slug and not SLUG.match(slug):
        problem("slug", "Use lower-case letters, digits, '-' and '_', starting with a letter "
                        "or digit.")
    code = AGENTS.get(slug)
    tools_chosen = bool(code_tool_names or mcp_server_rows or http_tool_rows)
    if code is not None:
        source = AGENTS.source_of(slug) or "an installed package"
        if instructions.strip():
            problem("instructions", f"{slug!r} is an installed agent ({source}): its "
                                    "instructions come from its code. Leave this empty, or "
                                    "choose another slug to define a new agent here.")
        if tools_chosen:
            problem("code_tools", f"{slug!r} is an installed agent: its tools come from its "
                                  "code. Choose tools only for agents defined here.")
        return found
    if not instructions.strip():
        problem("instructions", f"No installed agent has the slug {slug!r}: write "
                                "instructions to define the agent here, or install its "
                                "package (AGENTDESK_AGENTS or an agentdesk.agents entry point).")
    if input_schema:
        try:
            AgentSpec(slug="check", name="check", instructions="-", input_schema=input_schema)
        except Exception as exc:  # jsonschema.SchemaError, or our own ValueError
            problem("input_schema", f"Not a valid JSON schema: {getattr(exc, 'message', exc)}")
        else:
            if input_schema.get("type") != "object" or not input_schema.get("properties"):
                problem("input_schema", 'The input is a JSON object: give "type": "object" '
                                        'and its "properties".')
    catalogue = code_tools()
    unknown = [name for name in code_tool_names if name not in catalogue]
    if unknown:
        problem("code_tools", f"Not installed: {', '.join(unknown)}.")
    other_team = [str(row) for row in [*mcp_server_rows, *http_tool_rows]
                  if team_id is not None and row.team_id != team_id]
    if other_team:
        problem("mcp_servers" if any(row in mcp_server_rows for row in other_team)
                else "http_tools", f"Not of this agent's team: {', '.join(other_team)}.")
    names = [*code_tool_names,
             *(tool["name"] for row in mcp_server_rows for tool in row.listing or ()),
             *(row.name for row in http_tool_rows)]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        problem("http_tools", f"Two tools would share the name {', '.join(clashes)}: the "
                              "model could not tell them apart. Choose one.")
    return found


def http_tool_problems(row: HttpTool) -> dict[str, list[str]]:
    """Why an HTTP tool cannot be saved: its description, its schema, and where it points
    (the webhooks' SSRF guard, checked now and again on every call)."""
    config = http_config(row)
    found = http_problems(config)
    schema = row.args_schema
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        found.setdefault("args_schema", []).append(
            'The arguments are a JSON object: give "type": "object" and its "properties".')
    else:
        try:
            http_tool(config, route=route_http_tool)
        except ValueError as exc:
            found.setdefault("args_schema", []).append(str(exc))
    if "url_template" not in found:
        base = row.url_template.split("{", 1)[0]
        try:
            callback_urls.check(base, callback_urls.HTTP_TOOLS)
        except callback_urls.RefusedURL as exc:
            found.setdefault("url_template", []).append(str(exc))
    return found


def refresh_sources(agent: Agent) -> None:
    """Before a worker runs an admin-defined agent: re-list its MCP servers whose listing
    is stale (a server that is down keeps its last listing)."""
    if agent.defined_in_admin and AGENTS.get(agent.slug) is None:
        for server in agent.mcp_servers.filter(enabled=True):
            mcp_servers.refresh_if_stale(server)
