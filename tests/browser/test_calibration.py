"""Calibration in a real browser (issue 13): the dashboard leads to the reliability diagram
and the suggested threshold; a team admin applies it (asked first) and sees it applied; the
review queue takes an Approve and a Flag.

Set ``AGENTDESK_SCREENSHOTS`` to a directory to keep screenshots of both pages.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.stack import PY, ROOT

from .conftest import PASSWORD

pytestmark = pytest.mark.browser
SCREENSHOTS = os.environ.get("AGENTDESK_SCREENSHOTS", "")


def shoot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)


@pytest.fixture
def seeded(live_stack) -> list[int]:
    out = subprocess.run([PY, "-m", "tests.browser.calibration_seed", PASSWORD], cwd=ROOT,
                         env=live_stack.env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["runs"]


def test_calibrate_apply_the_threshold_and_review(login, seeded):
    page = login("calibadmin").pages[0]
    page.goto("/dashboard/")
    summary = page.get_by_test_id("calibration-summary")
    expect(summary.get_by_role("heading", name=re.compile("Calibration"))).to_be_visible()
    expect(summary.get_by_test_id("calibration-row").first).to_contain_text("300")
    shoot(page, "dashboard-calibration-1280.png")
    summary.get_by_role("link", name=re.compile("Reliability diagrams")).click()
    page.wait_for_url("**/calibration/")

    card = page.get_by_test_id("calibration-support-refunds-small")
    expect(card.get_by_role("heading", name=re.compile("support-refunds"))).to_be_visible()
    diagram = card.get_by_role("img", name=re.compile("Reliability diagram"))
    expect(diagram).to_be_visible()
    assert diagram.locator("rect.chart-accuracy").count() >= 5
    expect(card.get_by_test_id("calibration-count")).to_have_text("300")
    expect(card.get_by_test_id("calibration-current")).to_have_text("0.70")
    suggested = card.get_by_test_id("calibration-suggested").inner_text()
    assert re.fullmatch(r"0\.\d\d", suggested) and suggested != "0.70"
    expect(card.get_by_test_id("calibration-interval")).to_contain_text("–")
    expect(card.get_by_test_id("calibration-escalation-rate")).to_contain_text("%")
    shoot(page, "calibration-1280.png")

    apply = card.get_by_role("button", name=f"Apply threshold {suggested}")
    apply.click()
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("confirm-title")).to_have_text(
        f"Set calibrated's confidence threshold to {suggested}?")
    page.get_by_role("button", name="Cancel", exact=True).click()  # asked, nothing done
    expect(card.get_by_test_id("calibration-current")).to_have_text("0.70")
    apply.click()
    ok = page.get_by_role("button", name="Confirm apply")
    expect(ok).to_be_enabled()
    ok.click()
    page.wait_for_load_state()
    expect(page.get_by_role("status").first).to_contain_text(f"0.70 → {suggested}")
    card = page.get_by_test_id("calibration-support-refunds-small")
    expect(card.get_by_test_id("calibration-current")).to_have_text(suggested)
    expect(card.get_by_test_id("calibration-applied")).to_be_visible()
    expect(card.get_by_role("button", name=re.compile("Apply threshold"))).to_have_count(0)
    shoot(page, "calibration-applied-1280.png")

    page.get_by_role("link", name="Review", exact=True).click()
    page.wait_for_url("**/review/")
    expect(page.get_by_role("heading", name="Review", exact=True)).to_be_visible()
    first, second = (page.locator(f'[data-testid=review-item][data-run-id="{run}"]')
                     for run in seeded)
    expect(first).to_contain_text("Where is my order 1077?")
    expect(first).to_contain_text("arrives on Friday")
    expect(first.get_by_test_id("review-confidence")).to_contain_text("0.94")
    expect(second).to_contain_text("issue_refund")
    shoot(page, "review-queue-1280.png")
    first.get_by_role("button", name="Approve").click()
    expect(first.get_by_test_id("review-verdict")).to_contain_text("the agent was right")
    second.get_by_role("button", name="Flag").click()
    expect(second.get_by_test_id("review-verdict")).to_contain_text("the agent was wrong")
    shoot(page, "review-decided-1280.png")
    page.reload()
    expect(page.get_by_test_id("reviewed-row")).to_have_count(2)
    expect(page.get_by_test_id("review-empty")).to_be_visible()
