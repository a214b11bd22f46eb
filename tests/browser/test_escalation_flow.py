"""The walking skeleton in a real browser: submit, watch it pause, see it live, approve."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .console_helpers import decision_button

pytestmark = pytest.mark.browser


def mark_page(page: Page) -> None:
    """A marker that a reload would erase: proves updates arrive without one."""
    page.evaluate("window.__noReload = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__noReload === true")


def start_run(page: Page, message: str) -> str:
    page.goto("/runs/new/")
    page.select_option("select[name=agent]", label="support-refunds — Demo team")
    page.fill("textarea[name=message]", message)
    page.get_by_test_id("start-run").click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    return page.url


def test_refund_approval_flow_live_in_two_tabs(login):
    context = login("operator")
    inbox = context.pages[0]
    expect(inbox.get_by_test_id("inbox-row")).to_have_count(0)
    mark_page(inbox)

    run_page = context.new_page()
    start_run(run_page, "I want a refund for order 1042")
    mark_page(run_page)
    expect(run_page.get_by_test_id("run-status")).to_have_text("waiting for human", timeout=20_000)
    expect(run_page.get_by_test_id("step").first).to_be_visible()

    row = inbox.get_by_test_id("inbox-row")
    expect(row).to_have_count(1, timeout=10_000)
    expect(row).to_contain_text("approval")
    assert_not_reloaded(inbox)

    row.locator("a").first.click()
    inbox.wait_for_url(re.compile(r"/escalations/\d+/$"))
    body = inbox.locator("body")
    expect(body).to_contain_text("issue_refund")
    expect(body).to_contain_text("180")
    expect(body).to_contain_text("refund-policy.md")  # the retrieved context is on screen
    decision_button(inbox, "Approve").click()
    inbox.get_by_test_id("confirm-ok").click()  # a refund cannot be undone: it asks first
    expect(inbox.get_by_test_id("decision-status")).to_contain_text("approve")

    expect(run_page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=20_000)
    expect(run_page.get_by_test_id("run-summary")).to_contain_text("Refund of $180")
    assert_not_reloaded(run_page)


def test_reply_to_a_question_continues_the_run(login):
    context = login("operator")
    page = context.pages[0]
    run_url = start_run(page, "I want my money back")
    expect(page.get_by_test_id("run-status")).to_have_text("waiting for human", timeout=20_000)
    page.goto("/inbox/")
    page.get_by_test_id("inbox-row").filter(has_text="Which order").locator("a").first.click()
    page.fill("textarea[name=message]", "It is order 1001")
    decision_button(page, "Reply").click()
    expect(page.get_by_test_id("decision-status")).to_contain_text("reply")
    page.goto(run_url)
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=20_000)
    expect(page.get_by_test_id("run-summary")).to_contain_text("1001")
