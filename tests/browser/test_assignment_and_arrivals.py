"""Issue 17 in the browser: assigning an escalation (the assignee sees it under Mine, live;
everyone else sees whose it is), and new escalations while the inbox tab is in the
background — a count in the tab title, and a desktop notification for an operator who
opted in (Notification API, permission granted through Playwright).

Set ``AGENTDESK_SCREENSHOTS`` to a directory to keep screenshots of the assignment UI."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import PASSWORD
from .console_helpers import escalation_of, start_run

pytestmark = pytest.mark.browser
SCREENSHOTS = os.environ.get("AGENTDESK_SCREENSHOTS", "")

# Before any page script: record each Notification constructed (and still construct the
# real one), and let the test hide and show the tab (document.hidden / visibilityState).
SPY = """
(() => {
  window.__notes = [];
  const Real = window.Notification;
  if (typeof Real === "function") {
    function Spy(title, options) {
      window.__notes.push({title: title, body: (options || {}).body || "",
                           tag: (options || {}).tag || ""});
      try { return new Real(title, options); } catch (e) { return {close() {}}; }
    }
    Spy.requestPermission = (...args) => Real.requestPermission(...args);
    Object.defineProperty(Spy, "permission", {get: () => Real.permission});
    window.Notification = Spy;
  }
  let hidden = false;
  Object.defineProperty(Document.prototype, "hidden", {configurable: true,
    get() { return hidden; }});
  Object.defineProperty(Document.prototype, "visibilityState", {configurable: true,
    get() { return hidden ? "hidden" : "visible"; }});
  window.__setHidden = (value) => {
    hidden = value;
    document.dispatchEvent(new Event("visibilitychange"));
  };
})();
"""


def shoot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)


def test_assign_to_a_teammate_who_sees_it_under_mine_live(login, started):
    operator = login("operator").pages[0]
    admin = login("admin").pages[0]
    esc = escalation_of(operator, start_run(operator, "I want a refund for order 1042",
                                            started))
    admin.goto("/inbox/")
    row = admin.locator(f"#esc-{esc}")
    expect(row).to_be_visible()
    expect(row.get_by_test_id("assigned-to")).to_have_count(0)

    operator.goto(f"/escalations/{esc}/")
    box = operator.get_by_test_id("assign-box")
    expect(box.get_by_test_id("assigned-to")).to_have_text("Not assigned")
    operator.get_by_test_id("assign-select").select_option(label="admin")
    operator.get_by_test_id("assign").click()
    expect(box.get_by_test_id("assigned-to")).to_have_text("Assigned to admin")
    shoot(operator, "assignment-escalation-1280.png")

    # the admin's inbox hears of it over its websocket: the row now says whose it is
    expect(admin.locator(f"#esc-{esc}").get_by_test_id("assigned-to")).to_have_text(
        "Assigned to you")
    admin.get_by_test_id("filter-claimed-mine").click()
    expect(admin).to_have_url(re.compile(r"claimed=mine"))
    expect(admin.locator(f"#esc-{esc}")).to_be_visible()
    shoot(admin, "assignment-inbox-mine-1280.png")

    others = operator.context.new_page()
    others.goto("/inbox/")
    expect(others.locator(f"#esc-{esc}").get_by_test_id("assigned-to")).to_have_text(
        "Assigned to admin")
    shoot(others, "assignment-inbox-1280.png")

    # the admin hands it back: the operator's open escalation page follows, live
    admin.goto(f"/escalations/{esc}/")
    admin.get_by_test_id("assign-select").select_option(label="operator")
    admin.get_by_test_id("assign").click()
    expect(admin.get_by_test_id("assign-box").get_by_test_id("assigned-to")).to_have_text(
        "Assigned to operator")
    expect(box.get_by_test_id("assigned-to")).to_have_text("Assigned to you")
    others.goto("/audit/")
    expect(others.get_by_test_id("audit-table")).to_contain_text("reassigned")


def inbox_with_notifications(chromium, live_app) -> Page:
    """An operator's inbox in a browser that granted this site notifications."""
    context = chromium.new_context(base_url=live_app, viewport={"width": 1280, "height": 900},
                                   permissions=["notifications"])
    context.set_default_timeout(15_000)
    context.add_init_script(SPY)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url("**/inbox/")
    return page


def test_background_arrivals_count_in_the_title_and_notify_when_opted_in(chromium, live_app,
                                                                        started):
    inbox = inbox_with_notifications(chromium, live_app)
    try:
        expect(inbox).to_have_title("Inbox · AgentDesk")
        toggle = inbox.get_by_test_id("notify-toggle")
        expect(toggle).to_have_text("Desktop notifications: off")
        inbox.locator("html[data-keys=ready]").wait_for(state="attached")
        inbox.evaluate("window.__setHidden(true)")  # the operator looks at another tab

        elsewhere = inbox.context.new_page()
        first = escalation_of(elsewhere, start_run(elsewhere, "I want a refund for order 1042",
                                                   started))
        expect(inbox).to_have_title("(1) Inbox · AgentDesk")
        assert inbox.evaluate("window.__notes") == []  # not opted in: no notification

        inbox.evaluate("window.__setHidden(false)")
        expect(inbox).to_have_title("Inbox · AgentDesk")  # seen: the count is cleared
        expect(inbox.locator(f"#esc-{first}")).to_be_visible()
        toggle.click()  # opt in: the browser already allows it (Playwright's permission)
        expect(toggle).to_have_text("Desktop notifications: on")
        expect(toggle).to_have_attribute("aria-pressed", "true")
        inbox.evaluate("window.__setHidden(true)")

        second = escalation_of(elsewhere, start_run(elsewhere, "I want a refund for order 1042",
                                                    started))
        expect(inbox).to_have_title("(1) Inbox · AgentDesk")
        notes = inbox.evaluate("window.__notes")
        assert len(notes) == 1, notes
        assert notes[0]["title"] == "New escalation: approval required"
        assert notes[0]["tag"] == f"agentdesk-escalation-{second}"
        assert "(priority 10)" in notes[0]["body"]
        third = escalation_of(elsewhere, start_run(elsewhere, "I want a refund for order 1042",
                                                   started))
        expect(inbox).to_have_title("(2) Inbox · AgentDesk")
        assert [n["tag"] for n in inbox.evaluate("window.__notes")] == [
            f"agentdesk-escalation-{second}", f"agentdesk-escalation-{third}"]
        inbox.evaluate("window.__setHidden(false)")
        expect(inbox).to_have_title("Inbox · AgentDesk")

        # the choice is kept in this browser; opting out stops the notifications
        inbox.reload()
        expect(toggle).to_have_text("Desktop notifications: on")
        toggle.click()
        expect(toggle).to_have_text("Desktop notifications: off")
    finally:
        inbox.context.close()
