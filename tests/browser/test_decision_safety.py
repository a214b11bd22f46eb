"""No decision by accident (issue 11), in a real browser: irreversible actions ask first by
key and by mouse; keys typed while the next escalation loads act on neither page; a lost
session keeps the typed reply through logging in again.

Set ``AGENTDESK_SCREENSHOTS`` to a directory to keep a screenshot of the confirmation.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import PASSWORD
from .console_helpers import confirm, decision_button, escalation_of, keys_ready, start_run

pytestmark = pytest.mark.browser
SCREENSHOTS = os.environ.get("AGENTDESK_SCREENSHOTS", "")


def unique_tag(word: str) -> str:
    # letters only: the inbox search must not match another test's numbers
    return word + " " + uuid.uuid4().hex[:8].translate(str.maketrans("0123456789", "ghijklmnop"))


BURST = """keys => { for (const key of keys) document.body.dispatchEvent(
    new KeyboardEvent("keydown", {key, bubbles: true, cancelable: true})); }"""


def shoot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / name))


def still_open(page: Page, esc: int) -> None:
    page.goto(f"/escalations/{esc}/")
    expect(page.get_by_test_id("decision-status")).not_to_contain_text("Decided")
    expect(decision_button(page, "Reject")).to_be_visible()


def test_approving_a_refund_rejecting_and_aborting_ask_first(login, started):
    page = login("operator").pages[0]
    esc = escalation_of(page, start_run(page, "I want a refund for order 1042", started))
    page.goto(f"/escalations/{esc}/")
    keys_ready(page)
    dialog = page.get_by_test_id("confirm-dialog")
    # whole words for names: what is seen is what a screen reader says
    approve = page.get_by_role("button", name="Approve", exact=True)
    expect(approve).to_be_visible()
    expect(page.get_by_role("button", name="Abort", exact=True)).to_be_visible()

    page.keyboard.press("a")  # one key no longer approves a $180 refund
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("confirm-title")).to_have_text(
        "Approve issue_refund? It cannot be undone.")
    expect(page.get_by_test_id("confirm-detail")).to_contain_text("amount 180")
    expect(page.get_by_role("button", name="Confirm approve")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(approve).to_be_focused()

    page.keyboard.press("a")
    expect(page.get_by_test_id("confirm-ok")).to_be_focused()
    page.keyboard.press("a")  # a second "a" (a double press, typing) is no confirmation
    expect(dialog).to_be_hidden()
    page.keyboard.press("r")  # … and the rest of that burst of typing is ignored
    page.wait_for_timeout(300)
    expect(dialog).to_be_hidden()
    page.wait_for_timeout(1000)

    for key in ("r", "x"):
        page.keyboard.press(key)
        expect(dialog).to_be_visible()
        expect(page.get_by_test_id("confirm-ok")).to_have_text(
            {"r": "Confirm reject", "x": "Confirm abort"}[key])
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
    page.keyboard.press("Alt+x")  # with a modifier held the key is the browser's, not ours
    expect(dialog).to_be_hidden()

    approve.click()  # the mouse asks the same way
    expect(dialog).to_be_visible()
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(dialog).to_be_hidden()
    decision_button(page, "Take over").click()
    expect(page.get_by_test_id("confirm-title")).to_contain_text("Take over run")
    page.get_by_test_id("confirm-cancel").click()
    expect(page.get_by_test_id("decision-status")).not_to_contain_text("Decided")

    page.keyboard.press("?")
    expect(page.get_by_test_id("key-help")).to_contain_text("reject (asks first)")
    page.keyboard.press("Escape")

    approve.click()
    expect(page.get_by_test_id("confirm-ok")).to_be_enabled()
    shoot(page, "escalation-confirm-1280.png")
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("decision-status")).to_contain_text("Decided: approve")


def test_keys_typed_while_the_next_escalation_loads_decide_nothing(login, started):
    page = login("operator").pages[0]
    tag = unique_tag("Race")
    first = escalation_of(page, start_run(page, f"I want a refund for order 1042. {tag}.",
                                          started))
    second = escalation_of(page, start_run(
        page, f"Please refund order 2001, the laptop is broken. {tag}.", started))
    query = tag.replace(" ", "+")
    page.goto(f"/escalations/{first}/?q={query}")
    nxt = page.get_by_test_id("esc-next")
    target = int(re.search(r"/escalations/(\d+)/", nxt.get_attribute("href")).group(1))
    assert target == second
    keys_ready(page)

    # "j", then "order 1042" meant for the reply box of the next page, typed before the
    # browser has left this one (so, in one go from a script; Playwright's own press waits
    # for the navigation): the "r" rejected this escalation.
    page.evaluate(BURST, "jorder 1042")
    page.wait_for_url(re.compile(rf"/escalations/{second}/"))
    page.keyboard.type("order 1042")  # and the same on the next page while it loads
    keys_ready(page)
    expect(page.get_by_test_id("confirm-dialog")).to_have_count(0)
    expect(page.get_by_test_id("decision-status")).not_to_contain_text("Decided")
    still_open(page, first)
    still_open(page, second)

    # Cancel run, on the run page, asks first too.
    run_page = page.context.new_page()
    run_id = started[0]
    run_page.goto(f"/runs/{run_id}/")
    run_page.get_by_test_id("cancel-run").click()
    expect(run_page.get_by_test_id("confirm-title")).to_have_text(f"Cancel run #{run_id}?")
    run_page.keyboard.press("Escape")
    expect(run_page.get_by_test_id("run-actions")).not_to_contain_text("nothing to cancel")
    run_page.get_by_test_id("cancel-run").click()
    confirm(run_page)
    expect(run_page.get_by_test_id("run-actions")).to_contain_text("nothing to cancel")


def test_a_lost_session_keeps_the_typed_reply_through_logging_in(login, started):
    context = login("operator")
    page = context.pages[0]
    esc = escalation_of(page, start_run(page, f"I want my money back. {unique_tag('Lost')}",
                                        started))
    page.goto(f"/escalations/{esc}/")
    expect(decision_button(page, "Approve")).to_have_count(0)  # nothing proposed
    reply = "It is order 1001, the blue kettle"
    page.get_by_test_id("decision-message").fill(reply)
    context.clear_cookies()  # the session (and its CSRF cookie) is gone

    decision_button(page, "Reply").click()
    alert = page.get_by_test_id("session-expired")
    expect(alert).to_contain_text("Your session expired")
    expect(alert).to_contain_text("what you typed is kept")
    expect(page.locator("input[name=password]")).to_have_count(0)  # no login page in the card
    expect(page.get_by_test_id("decision-message")).to_have_value(reply)
    shoot(page, "escalation-session-expired-1280.png")

    page.get_by_test_id("session-login").click()
    page.wait_for_url(re.compile(r"/accounts/login/"))
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_test_id("login").click()
    page.wait_for_url(re.compile(rf"/escalations/{esc}/$"))  # the page, not …/decide/
    expect(page.get_by_test_id("decision-message")).to_have_value(reply)
    expect(page.get_by_test_id("typed-restored")).to_be_visible()
    shoot(page, "escalation-typed-restored-1280.png")
    expect(page.get_by_test_id("decision-status")).not_to_contain_text("Decided")

    decision_button(page, "Reply").click()
    expect(page.get_by_test_id("decision-status")).to_contain_text("Decided: reply")
