"""Two operators on one escalation; edit & approve refused with the field error."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .console_helpers import (
    click_confirmed,
    click_now,
    decision_button,
    escalation_of,
    start_run,
)

pytestmark = pytest.mark.browser


def test_two_operators_claim_and_decide_at_once_one_wins_one_resume(login, started):
    first, second = login("operator").pages[0], login("admin").pages[0]
    run_id = start_run(first, "I want a refund for order 1042", started)
    esc = escalation_of(first, run_id)
    for page in (first, second):
        page.goto(f"/escalations/{esc}/")
        expect(page.get_by_test_id("claim")).to_be_visible()

    click_now(first, "claim")
    click_now(second, "claim")
    held = re.compile("^(mine|theirs)$")
    for page in (first, second):
        expect(page.get_by_test_id("claim-box")).to_have_attribute("data-claim", held)
    states = [p.get_by_test_id("claim-box").get_attribute("data-claim") for p in (first, second)]
    assert sorted(states) == ["mine", "theirs"], states
    winner, loser = (first, second) if states[0] == "mine" else (second, first)
    winner_name = winner.get_by_test_id("username").inner_text()
    expect(loser.get_by_test_id("claim-box")).to_contain_text(f"Claimed by {winner_name}")

    for page in (winner, loser):  # a refund asks first: both dialogs up, then both confirm
        click_now(page, "action-approve")
        expect(page.get_by_test_id("confirm-ok")).to_be_enabled()
    click_now(winner, "confirm-ok")
    click_now(loser, "confirm-ok")
    expect(winner.get_by_test_id("decision-status")).to_contain_text(
        f"Decided: approve by {winner_name}")
    expect(loser.get_by_test_id("decision-status")).to_contain_text(
        re.compile(rf"(Claimed by|decided by|approve by) {winner_name}"))

    run_page = winner.context.new_page()
    run_page.goto(f"/runs/{run_id}/")
    expect(run_page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=30_000)
    expect(run_page.locator(".step-human")).to_have_count(1)  # one decision applied
    expect(run_page.locator(".step-tool").filter(has_text="issue_refund")).to_have_count(1)
    run_page.goto("/audit/")
    expect(run_page.get_by_test_id("audit-table")).to_contain_text(f"escalation #{esc}")


def test_edit_and_approve_with_invalid_arguments_shows_the_field_error(login, started):
    page = login("operator").pages[0]
    run_id = start_run(page, "I want a refund for order 1042", started)
    esc = escalation_of(page, run_id)
    page.goto(f"/escalations/{esc}/")
    page.locator("summary", has_text="Edit the arguments").click()
    page.get_by_test_id("decision-args").fill('{"order_id": "1042", "amount": -5}')
    click_confirmed(page, decision_button(page, "Edit & approve"))
    errors = page.get_by_test_id("field-errors")
    expect(errors).to_contain_text("amount")
    expect(errors).to_contain_text("greater than 0")
    expect(page.get_by_test_id("decision-error")).to_contain_text("do not fit issue_refund")
    expect(decision_button(page, "Approve")).to_be_visible()  # still open

    page.get_by_test_id("decision-args").fill(
        '{"order_id": "1042", "amount": 30, "reason": "partial refund"}')
    click_confirmed(page, decision_button(page, "Edit & approve"))
    expect(page.get_by_test_id("decision-status")).to_contain_text("Decided: approve")
    page.goto(f"/runs/{run_id}/")
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=30_000)
    expect(page.get_by_test_id("run-summary")).to_contain_text("$30")
