"""Agents defined in admin, with no code: saved in admin, runnable at once by form and API,
using the tools of a real MCP server (the example the README starts) through a real worker.

The MCP server is ``agentdesk.examples.mcp_server`` in a subprocess; the model is the
bundled simulator's generic brain, which calls the tool that best matches the task.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from runs import services
from runs.api_keys import create_api_key
from runs.models import Agent, AuditEvent, HttpTool, McpServer, Policy, Run, ToolCall
from tests.api.conftest import (  # noqa: F401  (autouse fixtures)
    ApiClient,
    fast_password_hashing,
    hold_runs_unless_worker,
)
from tests.example_mcp import example_mcp_server, free_port

from .helpers import open_escalation, wait_status

INSTRUCTIONS = "You help our support team: look customers up and open tickets when asked."


@pytest.fixture(scope="module")
def example_mcp(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The README's example MCP server over streamable HTTP, and its tickets file."""
    data = tmp_path_factory.mktemp("mcp-example")
    with example_mcp_server(data) as url:
        yield url, data / "tickets.jsonl"


@pytest.fixture
def admin_client(demo) -> Client:
    client = Client()
    client.force_login(demo["admin"])
    return client


def add_server(admin_client: Client, team, url: str, **fields) -> object:
    data = {"team": team.pk, "name": "helpdesk", "transport": "http", "url": url,
            "command": "", "header_env": "{}", "env": "{}", "timeout_s": "5",
            "enabled": "on", **fields}
    return admin_client.post("/admin/runs/mcpserver/add/", data)


def add_agent(admin_client: Client, team, **fields) -> object:
    data = {"team": team.pk, "slug": "helpdesk", "name": "Help desk",
            "policy": Policy.objects.get(name="support-default").pk, "enabled": "on",
            "instructions": INSTRUCTIONS, "input_schema": "{}",
            "knowledge_documents-TOTAL_FORMS": 0, "knowledge_documents-INITIAL_FORMS": 0,
            **fields}
    data = {k: v for k, v in data.items() if v is not None}
    return admin_client.post("/admin/runs/agent/add/", data)


def errors_of(response) -> str:
    assert response.status_code == 200, response.status_code  # the form again, with errors
    form = response.context["adminform"].form
    return " ".join(str(m) for messages in form.errors.values() for m in messages)


@pytest.fixture
def helpdesk(demo, admin_client, example_mcp) -> Agent:
    """An agent defined in admin with the example MCP server's tools."""
    url, _ = example_mcp
    response = add_server(admin_client, demo["team"], url)
    assert response.status_code == 302, errors_of(response)
    server = McpServer.objects.get(name="helpdesk")
    assert {t["name"] for t in server.listing} == {"lookup_customer", "open_ticket"}
    response = add_agent(admin_client, demo["team"], mcp_servers=[server.pk])
    assert response.status_code == 302, errors_of(response)
    return Agent.objects.get(slug="helpdesk")


def test_saved_in_admin_the_agent_is_runnable_by_api_and_form_at_once(helpdesk, demo):
    api = ApiClient(create_api_key(team=demo["team"], name="t").raw)
    listed = {a["slug"]: a for a in api.get("/agents").json()["items"]}
    assert listed["helpdesk"]["input_schema"]["required"] == ["message"]

    bad = api.post("/runs", {"agent": "helpdesk", "input": {"text": "hi"}})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_input", bad.json()
    assert any("message" in m for m in bad.json()["error"]["fields"]["input"])
    ok = api.post("/runs", {"agent": "helpdesk", "input": {"message": "hello"}})
    assert ok.status_code == 201 and ok.json()["status"] == "queued"

    console = Client()
    console.force_login(demo["operator"])
    page = console.get("/runs/new/")
    assert b"helpdesk" in page.content
    response = console.post("/runs/new/", {"agent": helpdesk.pk, "message": "hi"})
    assert response.status_code == 302
    assert Run.objects.filter(agent=helpdesk).count() == 2
    assert AuditEvent.objects.filter(action__contains="agent", team=demo["team"]).exists()


def test_admin_shows_the_tools_and_refuses_combinations_that_cannot_run(helpdesk, demo,
                                                                        admin_client):
    page = admin_client.get(f"/admin/runs/agent/{helpdesk.pk}/change/")
    assert b"defined here" in page.content
    assert b"lookup_customer" in page.content and b"open_ticket" in page.content

    installed = errors_of(add_agent(admin_client, demo["team"], slug="support-refunds"))
    assert "is an installed agent" in installed
    nothing = errors_of(add_agent(admin_client, demo["team"], slug="nobody", instructions=""))
    assert "write instructions to define the agent here" in nothing
    schema = errors_of(add_agent(admin_client, demo["team"], slug="s1",
                                 input_schema=json.dumps({"type": "strng"})))
    assert "Not a valid JSON schema" in schema
    not_object = errors_of(add_agent(admin_client, demo["team"], slug="s2",
                                     input_schema=json.dumps({"type": "string"})))
    assert '"type": "object"' in not_object
    other = McpServer.objects.create(team=demo["other_team"], name="theirs",
                                     url="http://127.0.0.1:9/mcp")
    crossing = errors_of(add_agent(admin_client, demo["team"], slug="s3",
                                   mcp_servers=[other.pk]))
    assert "Not of this agent's team" in crossing
    clash = HttpTool.objects.create(team=demo["team"], name="lookup_customer",
                                    description="d", url_template="https://example.com/x",
                                    args_schema={"type": "object", "properties": {}})
    clashing = errors_of(add_agent(admin_client, demo["team"], slug="s4",
                                   mcp_servers=[helpdesk.mcp_servers.get().pk],
                                   http_tools=[clash.pk]))
    assert "share the name lookup_customer" in clashing
    assert not Agent.objects.filter(slug__in=["nobody", "s1", "s2", "s3", "s4"]).exists()


def test_a_server_that_cannot_be_reached_or_a_command_not_allowed_is_not_saved(
        demo, admin_client):
    down = errors_of(add_server(admin_client, demo["team"], f"http://127.0.0.1:{free_port()}/mcp"))
    assert "Could not list the server's tools" in down and "unavailable" in down
    stdio = errors_of(add_server(admin_client, demo["team"], "", transport="stdio",
                                 command="bash -c 'rm -rf /'"))
    assert "'bash' may not be started by workers" in stdio
    assert not McpServer.objects.exists()


@pytest.mark.usefixtures("celery_worker")
def test_a_run_uses_the_read_only_mcp_tool_and_succeeds(helpdesk, demo, data_dir):
    run = services.submit_run(team=demo["team"], agent_slug="helpdesk", user_id=None,
                              task_input={"message": "Look up the customer "
                                                     "email=ada@example.com"})
    wait_status(run, "succeeded", "failed", "waiting_human")
    assert (run.status, run.reason) == ("succeeded", "")
    tool_steps = list(run.steps.filter(kind="tool"))
    assert [s.name for s in tool_steps] == ["lookup_customer"]
    assert tool_steps[0].result["plan"] == "Pro"
    assert "Pro" in run.answer


@pytest.mark.usefixtures("celery_worker")
def test_a_side_effect_waits_for_approval_then_happens_once(helpdesk, demo, data_dir,
                                                            example_mcp):
    _, tickets = example_mcp
    before = tickets.read_text().splitlines() if tickets.exists() else []
    Policy.objects.filter(pk=helpdesk.policy_id).update(approval_tools=["open_ticket"])
    run = services.submit_run(
        team=demo["team"], agent_slug="helpdesk", user_id=None,
        task_input={"message": 'Open a ticket for email=grace@example.com '
                               'summary="Invoice shows the wrong plan"'})
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    assert (run.reason, esc.proposed_tool) == ("approval_required", "open_ticket")
    assert len(tickets.read_text().splitlines() if tickets.exists() else []) == len(before)

    services.decide(escalation_id=esc.pk, user=demo["operator"], decision="approve")
    wait_status(run, "succeeded", "failed", "waiting_human")
    assert run.status == "succeeded", run.reason
    new = [json.loads(line) for line in tickets.read_text().splitlines()[len(before):]]
    assert len(new) == 1 and new[0]["summary"] == "Invoice shows the wrong plan"
    [ledger] = ToolCall.objects.filter(run=run, tool="open_ticket")
    assert ledger.status == "succeeded" and new[0]["idempotency_key"] == ledger.idempotency_key
