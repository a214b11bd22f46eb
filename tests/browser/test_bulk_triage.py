"""Bulk triage in a real browser: 20 escalations selected (x, shift-click, select all), one
of them decided meanwhile by a second operator in another browser; the bulk approve decides
19 and reports the 20th as "someone else decided first"; every run goes on, once.

The module runs its own app (``live_app`` below): twenty waiting runs in the demo team
would crowd the other tests' inboxes. The runs are real ones, submitted through the REST
API and paused by the agent for approval. Screenshots of the inbox with a bulk selection
(1280 and 390 px) and of the results go to ``screenshots/``.
"""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.stack import PY, ROOT, Stack

from .conftest import own_app
from .console_helpers import click_confirmed, confirm, decision_button, keys_ready, row_ids

pytestmark = pytest.mark.browser

SHOTS = ROOT / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
COUNT = 20


stack, live_app = own_app("bulk")  # an app of its own: counts see only this module's data


def manage(stack: Stack, *args: str) -> str:
    done = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=stack.env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def waiting_escalations(stack: Stack, count: int) -> list[int]:
    """Submit ``count`` refund requests through the API; the ids of their escalations once
    every run has paused for approval."""
    key = manage(stack, "create_api_key", "--team", "demo", "--name", "bulk-test")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=10) as api:
        for n in range(count):
            resp = api.post("/api/v1/runs", json={
                "agent": "support-refunds",
                "input": {"message": f"I want a refund for order 1042 (bulk {n})"}})
            assert resp.status_code == 201, resp.text
        deadline = time.monotonic() + 120
        while True:
            items = api.get("/api/v1/escalations", params={"limit": 100}).json()["items"]
            if len(items) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert len(items) == count, f"{len(items)} of {count} runs paused in time"
    return sorted(item["id"] for item in items)


def count_decisions(stack: Stack) -> dict:
    code = ("import json\nfrom runs.models import AuditEvent, Escalation, Run, Step\n"
            "print(json.dumps({"
            "'decided': Escalation.objects.filter(status='decided').count(), "
            "'audited': AuditEvent.objects.filter(action='escalation.decided').count(), "
            "'human_steps': Step.objects.filter(kind='human').count(), "
            "'succeeded': Run.objects.filter(status='succeeded').count()}))")
    return json.loads(manage(stack, "shell", "-c", code))


def shoot(page: Page, name: str, full_page: bool = False) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=full_page)


def test_twenty_selected_one_decided_meanwhile_by_a_second_operator(login, stack):
    escalations = waiting_escalations(stack, COUNT)
    page = login("operator").pages[0]
    page.goto("/inbox/")
    keys_ready(page)
    expect(page.get_by_test_id("inbox-row")).to_have_count(COUNT)
    ids = row_ids(page)
    assert sorted(ids) == escalations
    count = page.get_by_test_id("bulk-count")

    def box(esc_id: int):
        return page.get_by_role("checkbox", name=f"Select escalation #{esc_id}", exact=True)

    # keys: j to the first row, x selects it
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(box(ids[0])).to_be_checked()
    expect(count).to_have_text("1 selected")
    # shift-click: the range from there
    box(ids[4]).click(modifiers=["Shift"])
    expect(count).to_have_text("5 selected")
    for esc_id in ids[:5]:
        expect(box(esc_id)).to_be_checked()
    expect(box(ids[5])).not_to_be_checked()
    page.keyboard.press("x")  # focus is on the fifth row's box: x unselects that row
    expect(box(ids[4])).not_to_be_checked()
    expect(count).to_have_text("4 selected")
    select_all = page.get_by_role("checkbox", name="Select all on this page")
    expect(select_all).not_to_be_checked()
    select_all.check()
    expect(count).to_have_text(f"{COUNT} selected")
    shoot(page, "inbox-bulk-selection-1280.png")
    page.set_viewport_size(PHONE)
    expect(count).to_be_in_viewport()
    shoot(page, "inbox-bulk-selection-390.png")
    page.set_viewport_size(DESKTOP)

    # meanwhile a second operator, in another browser, approves one of the twenty
    taken = ids[7]
    other = login("admin").pages[0]
    other.goto(f"/escalations/{taken}/")
    click_confirmed(other, decision_button(other, "Approve"))
    expect(other.get_by_test_id("decision-status")).to_contain_text("Decided: approve by admin")

    # the live inbox drops that row; the selection keeps it (it was chosen)
    expect(page.locator(f"#esc-{taken}")).to_have_count(0)
    expect(count).to_have_text(
        f"{COUNT} selected (1 no longer listed: the results will say why)")
    expect(select_all).to_be_checked()  # all the rows still listed

    page.get_by_role("button", name="Approve selected", exact=True).click()
    expect(page.get_by_test_id("confirm-title")).to_have_text(f"Approve {COUNT} escalations?")
    confirm(page)

    results = page.get_by_test_id("bulk-results")
    expect(page.get_by_test_id("bulk-summary")).to_have_text(
        f"Approve {COUNT}: {COUNT - 1} decided, 1 someone else decided first.")
    expect(results).to_be_focused()  # a screen reader reads the summary next
    expect(results.locator("[data-kind=done]")).to_have_count(COUNT - 1)
    lost = results.locator("[data-kind=lost]")
    expect(lost).to_have_count(1)
    expect(lost).to_have_attribute("data-esc-id", str(taken))
    expect(lost).to_contain_text("someone else decided first")
    expect(lost).to_contain_text("Already decided by admin (approve)")
    expect(page.get_by_test_id("inbox-row")).to_have_count(0)  # live: all decided
    expect(count).to_have_text("Tick escalations to act on several at once.")
    shoot(page, "inbox-bulk-results-1280.png")

    # every run goes on from its one decision
    deadline = time.monotonic() + 90
    while (seen := count_decisions(stack))["succeeded"] < COUNT and time.monotonic() < deadline:
        time.sleep(1)
    assert seen == {"decided": COUNT, "audited": COUNT, "human_steps": COUNT,
                    "succeeded": COUNT}, seen
