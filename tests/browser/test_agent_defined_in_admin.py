"""The README's "An agent without code", in the browser: an admin adds the example MCP
server and an agent that uses it, then runs it from the console — no code, no restart."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.example_mcp import example_mcp_server

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "screenshots"


@pytest.fixture(scope="module")
def example_mcp(tmp_path_factory) -> Iterator[str]:
    with example_mcp_server(tmp_path_factory.mktemp("mcp-example-browser")) as url:
        yield url


def test_admin_defines_an_agent_with_an_mcp_server_and_runs_it(login, example_mcp):
    page = login("admin").new_page()

    page.goto("/admin/runs/mcpserver/add/")
    page.select_option("select[name=team]", label="Demo team")
    page.fill("input[name=name]", "helpdesk-browser")
    page.select_option("select[name=transport]", value="http")
    page.fill("input[name=url]", example_mcp)
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    expect(page.locator(".field-tools_listed")).to_contain_text("lookup_customer")
    expect(page.locator(".field-tools_listed")).to_contain_text("open_ticket — changes data")

    page.goto("/admin/runs/agent/add/")
    page.select_option("select[name=team]", label="Demo team")
    page.fill("input[name=slug]", "helpdesk-browser")
    page.fill("input[name=name]", "Help desk")
    page.select_option("select[name=policy]", label="support-default")
    page.fill("textarea[name=instructions]",
              "You help our support team: look customers up and open tickets when asked.")
    page.select_option("select[name=mcp_servers]", label="helpdesk-browser (demo)")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".field-implementation")).to_contain_text("defined here")
    expect(page.locator(".field-tools")).to_contain_text("lookup_customer — read-only")
    page.screenshot(path=str(SHOTS / "admin-agent-defined-1280.png"), full_page=True)

    page.goto("/runs/new/")
    page.select_option("select[name=agent]", label="helpdesk-browser — Demo team")
    page.fill("textarea[name=message]", "Look up the customer email=ada@example.com")
    page.get_by_test_id("start-run").click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("body")).to_contain_text("lookup_customer")
    expect(page.locator("body")).to_contain_text("Ada Lovelace")
    page.screenshot(path=str(SHOTS / "run-admin-defined-agent-1280.png"), full_page=True)
