"""A console everyone can use: an axe-core audit of every page at 1280 and 390 px with no
serious or critical violation; decision buttons whose accessible names are their visible
labels; visible focus in a sensible order; arrivals announced in a live region.

The module runs its own app (``live_app`` below) with content on every page: a run waiting
on an escalation, the calibration seed (labels, a review sample), a bulk selection and its
results in the inbox. The audit's summary (page × width → violations by impact) is printed
into the test output whether it passes or not.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.stack import PY, ROOT

from .conftest import PASSWORD, own_app
from .console_helpers import decision_button, escalation_of, keys_ready, start_run

pytestmark = pytest.mark.browser

WIDTHS = (1280, 390)
BLOCKING = ("serious", "critical")
IMPACTS = ("critical", "serious", "moderate", "minor")


stack, live_app = own_app("a11y")  # an app of its own: counts see only this module's data


@pytest.fixture(scope="module")
def content(stack) -> None:
    """Labels and a review sample, so calibration and review have something to show."""
    subprocess.run([PY, "-m", "tests.browser.calibration_seed", PASSWORD], cwd=ROOT,
                   env=stack.env, check=True, capture_output=True, text=True)


def settle(page: Page) -> None:
    """The page is ready for keys, and its first live catch-up has come and gone."""
    keys_ready(page)
    page.wait_for_load_state("networkidle")


def audit(page: Page) -> dict:
    results = Axe().run(page).response
    return {"violations": [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [", ".join(map(str, n["target"])) for n in v["nodes"]]}
        for v in results["violations"]]}


def summary_table(found: dict[tuple[str, int], dict]) -> str:
    lines = ["axe-core audit: violations by impact (critical / serious / moderate / minor)"]
    for (name, width), result in found.items():
        by = Counter(v["impact"] for v in result["violations"])
        counts = " / ".join(str(by[i]) for i in IMPACTS)
        rules = ", ".join(f"{v['id']} ({v['impact']}, {len(v['nodes'])})"
                          for v in result["violations"])
        lines.append(f"  {name:<12} {width:>4} px  {counts}{'   ' + rules if rules else ''}")
    return "\n".join(lines)


def test_every_console_page_passes_axe_at_1280_and_390(login, chromium, live_app, content,
                                                      started, capsys):
    page = login("admin").pages[0]
    run_id = start_run(page, "I want a refund for order 1042", started)
    esc = escalation_of(page, run_id)
    pages = {"inbox": "/inbox/", "escalation": f"/escalations/{esc}/", "runs list": "/runs/",
             "run detail": f"/runs/{run_id}/", "new run": "/runs/new/",
             "dashboard": "/dashboard/", "review": "/review/", "calibration": "/calibration/",
             "audit": "/audit/", "404": "/runs/987654321/"}
    anonymous = chromium.new_context(base_url=live_app)
    login_page = anonymous.new_page()

    found: dict[tuple[str, int], dict] = {}
    for width in WIDTHS:
        for p in (page, login_page):
            p.set_viewport_size({"width": width, "height": 900 if width > 600 else 844})
        for name, url in pages.items():
            page.goto(url)
            settle(page)
            if name == "inbox":  # with a bulk selection, and the results of one
                page.get_by_test_id("row-select").first.check()
                page.get_by_role("button", name="Claim selected").click()
                expect(page.get_by_test_id("bulk-results")).to_be_visible()
            found[(name, width)] = audit(page)
        login_page.goto("/accounts/login/")
        login_page.wait_for_load_state("networkidle")
        found[("login", width)] = audit(login_page)
    anonymous.close()

    with capsys.disabled():
        print("\n" + summary_table(found))
    blocking = {f"{name} @ {width}": [v for v in result["violations"]
                                      if v["impact"] in BLOCKING]
                for (name, width), result in found.items()}
    blocking = {where: found_here for where, found_here in blocking.items() if found_here}
    assert not blocking, json.dumps(blocking, indent=1)


def test_decision_buttons_are_named_by_their_visible_labels(login, started):
    page = login("operator").pages[0]
    esc = escalation_of(page, start_run(page, "I want a refund for order 1042", started))
    page.goto(f"/escalations/{esc}/")
    keys_ready(page)
    for label, key in (("Approve", "a"), ("Reject", "r"), ("Reply", "y"),
                       ("Take over", "t"), ("Abort", "x")):
        button = decision_button(page, label)
        expect(button).to_be_visible()
        expect(button).to_have_accessible_name(label)  # never "A pprove"
        expect(button).to_have_attribute("aria-keyshortcuts", key)
        if key in label.lower():  # the letter is marked where it is, inside the word
            expect(button.locator(".key-letter")).to_have_text(re.compile(key, re.I))
    page.locator("summary", has_text="Edit the arguments").click()
    expect(decision_button(page, "Edit & approve")).to_have_accessible_name("Edit & approve")
    claim = page.get_by_role("button", name="Claim", exact=True)
    expect(claim).to_have_attribute("aria-keyshortcuts", "c")
    expect(claim.locator(".key-letter")).to_have_text("C")


# what has focus: "<row id>:<test id, or link>" inside an inbox row
FOCUSED = """() => { const e = document.activeElement, row = e.closest('.esc-row');
  const what = e.dataset.testid || (e.hasAttribute('data-row-link') ? 'link' : e.tagName);
  return (row ? row.id + ':' : '') + what; }"""
OUTLINE = "e => getComputedStyle(e).outlineStyle + ' ' + getComputedStyle(e).outlineWidth"


def test_focus_moves_in_reading_order_and_shows(login, started):
    page = login("operator").pages[0]
    esc = escalation_of(page, start_run(page, "I want a refund for order 1042", started))
    page.goto("/inbox/")
    keys_ready(page)
    row = page.locator(f"#esc-{esc}")
    page.get_by_test_id("inbox-search").focus()
    order = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        order.append(focused)
        if focused == f"esc-{esc}:claim":
            break
    mine = [f for f in order if f.startswith(f"esc-{esc}:")]
    assert mine == [f"esc-{esc}:row-select", f"esc-{esc}:link", f"esc-{esc}:claim"], order
    # Back to the row's box and its link: each shows a solid 2 px outline
    page.keyboard.press("Shift+Tab")
    assert row.evaluate(OUTLINE) == "solid 2px", row.evaluate(OUTLINE)
    page.keyboard.press("Shift+Tab")
    box = row.get_by_test_id("row-select")
    expect(box).to_be_focused()
    assert box.evaluate(OUTLINE) == "solid 2px", box.evaluate(OUTLINE)
    # the bulk bar comes before the filters and the list, as it is shown
    page.get_by_test_id("select-all").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("bulk-message")).to_be_focused()


def test_a_new_escalation_is_announced_in_the_live_region(login, started):
    page = login("operator").pages[0]
    page.goto("/inbox/")
    keys_ready(page)
    announcer = page.get_by_role("status").and_(page.get_by_test_id("inbox-announcer"))
    expect(announcer).to_have_text("")
    other = page.context.new_page()
    run_id = start_run(other, "I want a refund for order 1042", started)
    escalation_of(other, run_id)
    expect(announcer).to_have_text(re.compile(
        r"^New escalation\. approval required: Approve issue_refund"), timeout=20_000)
