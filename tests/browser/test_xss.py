"""Hostile text never runs in the console (issue 15, item 7), in real Chromium.

XSS payloads go in through every way text reaches a page — the form, the REST API, a tool's
result and a model's reply — and the test opens the inbox, the escalation and the run pages
that show them. Each payload calls ``alert``, which an init script replaces by a recorder:
nothing may be recorded, no dialog may open, and the browser may report no
Content-Security-Policy violation (one would mean markup got through escaping and only the
policy stopped it). The payload's own text is on the page, so it was escaped, not dropped;
and every page came with the policy.

The tool result and the model reply come from real paths: the example MCP server (an admin's
agent without code, as in the README) answers a lookup of an unknown customer with an error
that quotes the e-mail it was given, and opens tickets whose summary it echoes; the
simulator, like a real model, quotes the task in its tool arguments and answers.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.example_mcp import example_mcp_server
from tests.stack import PY, ROOT

from .console_helpers import escalation_of, start_run

pytestmark = pytest.mark.browser

# Recorders instead of dialogs, and every CSP violation the page reports.
WATCH = """
window.__xss = [];
window.alert = window.confirm = window.prompt = (m) => { window.__xss.push(String(m)); };
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
"""

FORM = "<img src=x onerror=alert(1)>\"'><svg onload=alert(2)>"
API = "<script>alert(3)</script><img src=x onerror=alert(4)>"
TOOL = "<img src=x onerror='alert(5)'>"
REPLY = "<svg onload='alert(6)'><b>bold</b>"

SETUP_AGENT = """
import os
from runs.models import Agent, McpServer, Team
team = Team.objects.get(slug="demo")
policy = Agent.objects.get(team=team, slug="support-refunds").policy
server, _ = McpServer.objects.update_or_create(team=team, name="xss-helpdesk",
                                               defaults={"url": os.environ["MCP_URL"]})
agent, _ = Agent.objects.update_or_create(team=team, slug="xss-helpdesk", defaults={
    "name": "XSS help desk", "policy": policy,
    "instructions": "You help our support team: look customers up and open tickets."})
agent.mcp_servers.set([server])
"""


@pytest.fixture(scope="module")
def helpdesk_agent(live_stack, tmp_path_factory) -> Iterator[str]:
    """An agent defined in admin on the example MCP server (set up as admin would save it)."""
    with example_mcp_server(tmp_path_factory.mktemp("mcp-xss")) as url:
        subprocess.run([PY, "manage.py", "shell", "-c", SETUP_AGENT], cwd=ROOT,
                       env={**live_stack.env, "MCP_URL": url}, check=True,
                       capture_output=True, timeout=120)
        yield "xss-helpdesk — Demo team"


@pytest.fixture(scope="module")
def api_key(live_stack) -> str:
    out = subprocess.run([PY, "manage.py", "create_api_key", "--team", "demo", "--name", "xss"],
                         cwd=ROOT, env=live_stack.env, check=True, capture_output=True,
                         text=True, timeout=120)
    return out.stdout.strip().splitlines()[-1]


def watched(login) -> Page:
    context = login("operator")
    context.add_init_script(WATCH)
    page = context.pages[0]
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    return page


def visit(page: Page, path: str, *shown: str) -> None:
    """Open ``path``: it carries the CSP, shows each text in ``shown`` as text, and nothing
    ran or was blocked."""
    response = page.goto(path)
    assert response is not None and response.ok, path
    policy = dict(part.strip().split(" ", 1) for part in
                  response.headers.get("content-security-policy", "").split(";"))
    assert policy.get("script-src") == "'self'", path  # no inline script, no eval
    for text in shown:
        expect(page.locator("main")).to_contain_text(text)
    clean(page, path)


def clean(page: Page, where: str) -> None:
    page.wait_for_timeout(300)  # an onerror fires once the broken image has failed to load
    assert page.evaluate("window.__xss") == [], f"{where}: a payload ran"
    assert page.evaluate("window.__csp") == [], f"{where}: CSP had to block something"
    assert page.dialogs == [], f"{where}: a dialog opened"  # type: ignore[attr-defined]


def test_task_input_from_the_form_and_model_arguments_are_shown_as_text(login, started):
    page = watched(login)
    run_id = start_run(page, f"I want a refund for order 1042 because {FORM}", started)
    esc_id = escalation_of(page, run_id)  # waits: $180 needs approval
    clean(page, "run page, live")
    visit(page, f"/runs/{run_id}/", FORM, "issue_refund")
    visit(page, "/inbox/")
    visit(page, f"/escalations/{esc_id}/", FORM)
    # the model's proposed arguments (the reason quotes the task) in the confirm dialog too
    page.get_by_test_id("action-approve").click()
    expect(page.get_by_test_id("confirm-detail")).to_contain_text("<img src=x onerror=")
    page.keyboard.press("Escape")
    clean(page, "approve dialog")
    visit(page, "/runs/")


def test_task_input_from_the_api_is_shown_as_text(login, live_app, api_key, started):
    page = watched(login)
    response = httpx.post(f"{live_app}/api/v1/runs", timeout=30,
                          headers={"Authorization": f"Bearer {api_key}"},
                          json={"agent": "support-refunds",
                                "input": {"message": f"Where is my order 1077? {API}"}})
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    started.append(run_id)
    visit(page, f"/runs/{run_id}/", API)
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=30_000)
    clean(page, "run page after the live updates")
    visit(page, "/runs/")


def test_a_tool_error_and_the_model_question_quoting_it_are_shown_as_text(
        login, helpdesk_agent, started):
    page = watched(login)
    page.goto("/runs/new/")
    page.select_option("select[name=agent]", label=helpdesk_agent)
    page.fill("textarea[name=message]", f'Look up the customer email="{TOOL}"')
    page.get_by_test_id("start-run").click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run_id = int(re.search(r"/runs/(\d+)/$", page.url).group(1))
    started.append(run_id)
    esc_id = escalation_of(page, run_id)  # the lookup failed: the model asks a human
    visit(page, f"/runs/{run_id}/", f"no customer with email {TOOL}")
    visit(page, "/inbox/", TOOL)
    visit(page, f"/escalations/{esc_id}/", TOOL)
    expect(page.get_by_test_id("esc-question")).to_contain_text(TOOL)  # the model's reply


def test_a_tool_result_and_the_model_answer_echoing_it_are_shown_as_text(
        login, helpdesk_agent, started):
    page = watched(login)
    page.goto("/runs/new/")
    page.select_option("select[name=agent]", label=helpdesk_agent)
    page.fill("textarea[name=message]",
              f'Open a ticket for email=ada@example.com summary="{REPLY}"')
    page.get_by_test_id("start-run").click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run_id = int(re.search(r"/runs/(\d+)/$", page.url).group(1))
    started.append(run_id)
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=30_000)
    clean(page, "run page, live")
    visit(page, f"/runs/{run_id}/", REPLY)
    assert page.locator("main b", has_text="bold").count() == 0  # not even harmless markup
