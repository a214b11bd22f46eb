"""Keyboard-only triage: three escalations handled with j/k to move and a/r/y to act."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from .console_helpers import (
    confirm,
    escalation_of,
    keys_ready,
    start_run,
)

pytestmark = pytest.mark.browser


def test_keyboard_only_triage_of_three_escalations(login, started):
    context = login("operator")
    page = context.pages[0]
    tag = "Case " + uuid.uuid4().hex[:8].translate(str.maketrans("0123456789", "ghijklmnop"))
    tasks = {  # inbox order: approvals (priority 10) oldest deadline first, then questions
        "first": f"I want a refund for order 1042. {tag}.",
        "second": f"Please refund order 2001, the laptop is broken. {tag}.",
        "third": f"I want my money back. {tag}.",
    }
    escalations = {}
    for name, message in tasks.items():
        escalations[name] = escalation_of(page, start_run(page, message, started))

    page.goto(f"/inbox/?q={tag.replace(' ', '+')}")
    expect(page.get_by_test_id("inbox-row")).to_have_count(3)
    keys_ready(page)
    page.keyboard.press("?")
    expect(page.get_by_test_id("key-help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("key-help")).to_be_hidden()

    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")  # back to the first row
    expect(page.locator(".esc-row.is-selected")).to_have_attribute(
        "data-esc-id", str(escalations["first"]))
    page.keyboard.press("c")  # claim the selected row
    # the claim's own answer, or (if a live refresh of the list replaced the row while the
    # claim was in flight) the refresh its claim signal triggers
    expect(page.locator(f"#esc-{escalations['first']}")).to_contain_text("You hold it",
                                                                          timeout=15_000)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/escalations/{escalations['first']}/"))
    keys_ready(page)

    page.keyboard.press("a")  # a refund: it asks first
    confirm(page)
    expect(page.get_by_test_id("decision-status")).to_contain_text("Decided: approve")
    page.keyboard.press("j")
    page.wait_for_url(re.compile(rf"/escalations/{escalations['second']}/"))
    keys_ready(page)

    page.keyboard.press("r")
    confirm(page)
    expect(page.get_by_test_id("decision-status")).to_contain_text("Decided: reject")
    page.keyboard.press("j")
    page.wait_for_url(re.compile(rf"/escalations/{escalations['third']}/"))
    keys_ready(page)

    page.keyboard.press("y")  # the reply needs words: focus the message first
    expect(page.get_by_test_id("decision-message")).to_be_focused()
    page.keyboard.type("It is order 1001")  # typing "a", "r", "y" here must not act
    expect(page.get_by_test_id("decision-message")).to_have_value("It is order 1001")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_test_id("decision-status")).to_contain_text("Decided: reply")
    page.keyboard.press("u")  # back to the inbox: nothing of this case is left open
    page.wait_for_url(re.compile(r"/inbox/"))
    expect(page.get_by_test_id("inbox-row")).to_have_count(0)
