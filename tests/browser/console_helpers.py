"""Steps the console's browser tests share: start a run, wait for its escalation."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

CLICK_NOW = "sel => document.querySelector(sel)?.click()"


def click_now(page: Page, testid: str) -> None:
    """Click at once, without waiting for the element to settle (two operators at once)."""
    page.evaluate(CLICK_NOW, f'[data-testid="{testid}"]')


def start_run(page: Page, message: str, started: list[int] | None = None) -> int:
    page.goto("/runs/new/")
    page.select_option("select[name=agent]", label="support-refunds — Demo team")
    page.fill("textarea[name=message]", message)
    page.get_by_test_id("start-run").click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run_id = int(re.search(r"/runs/(\d+)/$", page.url).group(1))
    if started is not None:
        started.append(run_id)
    return run_id


def escalation_of(page: Page, run_id: int) -> int:
    """Wait for the run to pause; the id of its open escalation."""
    page.goto(f"/runs/{run_id}/")
    expect(page.get_by_test_id("run-status")).to_have_text("waiting for human", timeout=30_000)
    href = page.get_by_test_id("open-escalation").first.get_attribute("href")
    return int(re.search(r"/escalations/(\d+)/", href).group(1))


def mark_page(page: Page) -> None:
    """A marker a reload would erase: proves updates arrive without one."""
    page.evaluate("window.__noReload = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__noReload === true")


def row_ids(page: Page) -> list[int]:
    return [int(i) for i in page.eval_on_selector_all(
        "[data-testid=inbox-row]", "rows => rows.map(r => r.dataset.escId)")]


def keys_ready(page: Page) -> None:
    """Wait until the page takes shortcuts (console.js ignores keys until it is ready)."""
    page.locator("html[data-keys=ready]").wait_for(state="attached")


def confirm(page: Page) -> None:
    """Confirm the action the dialog asks about, as an operator would: Enter on the focused
    "Confirm …" button."""
    expect(page.get_by_test_id("confirm-ok")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("confirm-dialog")).to_be_hidden()


def decision_button(page: Page, name: str) -> Locator:
    """A decision button found as a screen reader finds it: by its role and its whole name
    (the shortcut letter is marked inside the word, never splitting it)."""
    return page.get_by_role("button", name=name, exact=True)


def click_confirmed(page: Page, target: str | Locator) -> None:
    """Click a button that asks first (a test id, or a locator), then its dialog's confirm
    button."""
    (page.get_by_test_id(target) if isinstance(target, str) else target).click()
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("confirm-dialog")).to_be_hidden()
