"""Console polish in a real browser (issue 11): a long paste is refused, never cut; long
unbroken strings wrap on a phone; the overridden badge, cached steps and the steps bar.

The module runs its own app (``live_app`` below), so it can write the odd records these
pages must survive (a 2,000-character word, a run past its step limit) straight into that
app's database with ``manage.py shell``. Set ``AGENTDESK_SCREENSHOTS`` to a directory to
keep screenshots at 1280 and 390 px.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.stack import PY, ROOT, Stack

from .conftest import own_app

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
SCREENSHOTS = os.environ.get("AGENTDESK_SCREENSHOTS", "")
LONG_WORD = "X" * 2000  # no space, no hyphen: nothing to break at


stack, live_app = own_app("polish")  # an app of its own: counts see only this module's data


def django_shell(stack: Stack, code: str) -> dict:
    """Run ``code`` in the app's ``manage.py shell``; it prints one JSON object."""
    done = subprocess.run([PY, "manage.py", "shell", "-c", code], cwd=ROOT, env=stack.env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


SEED = """
import json
from runs import claims
from runs.models import Agent, Escalation, Run, Step, Team
team = Team.objects.get(slug="demo")
agent = Agent.objects.select_related("policy").get(team=team, slug="support-refunds")
snapshot = agent.policy.snapshot().model_dump(mode="json")
word = "X" * 2000
run = Run.objects.create(team=team, agent=agent, input={"message": "Refund " + word},
                         status="waiting_human", reason="low_confidence",
                         policy_snapshot=snapshot, state={})
esc = Escalation.objects.create(
    run=run, team=team, step_index=0, reason="low_confidence", question=word,
    proposed_tool="issue_refund", proposed_args={"order_id": word}, confidence=0.4,
    priority=claims.priority_for("low_confidence"),
    context=[{"title": word, "source": word, "text": word}])
Step.objects.create(run=run, index=0, kind="escalation", name="low_confidence",
                    args={"question": word})
done = Run.objects.create(team=team, agent=agent, input={"message": "Refund order 1042"},
                          status="succeeded", overridden=True, answer="Refunded $40 of $80.",
                          policy_snapshot={**snapshot, "max_steps": 2}, state={}, step_count=4)
for i, (kind, name, args) in enumerate([("model", "sim-small", {"tier": "small"}),
                                        ("model", "sim-small", {"tier": "small",
                                                                "cache_hit": True}),
                                        ("human", "reject", {"operator": "operator"}),
                                        ("final", "succeeded", {})]):
    Step.objects.create(run=done, index=i, kind=kind, name=name, tier=args.get("tier", ""),
                        args=args, tokens_in=0 if args.get("cache_hit") else 812,
                        tokens_out=0 if args.get("cache_hit") else 64)
print(json.dumps({"run": run.pk, "esc": esc.pk, "done": done.pk}))
"""


@pytest.fixture(scope="module")
def seeded(stack) -> dict:
    return django_shell(stack, SEED)


def run_count(stack: Stack) -> int:
    return django_shell(stack, "import json\nfrom runs.models import Run\n"
                               "print(json.dumps({'n': Run.objects.count()}))")["n"]


def page_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def shoot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        width = page.viewport_size["width"]
        page.screenshot(path=str(Path(SCREENSHOTS) / f"polish-{name}-{width}.png"),
                        full_page=True)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_a_300_kb_paste_is_refused_with_the_text_kept_and_no_run(login, stack, viewport):
    page = login("operator").new_page()
    page.set_viewport_size(viewport)
    before = run_count(stack)
    page.goto("/runs/new/")
    page.select_option("select[name=agent]", label="support-refunds — Demo team")
    pasted = "Please refund order 1042. " + "lorem-ipsum " * 25_000  # ≈ 300 KB
    page.fill("textarea[name=message]", pasted)
    # not cut to 4,000 characters by a maxlength attribute
    assert page.eval_on_selector("textarea[name=message]", "t => t.value.length") == len(pasted)
    expect(page.get_by_test_id("message-limit")).to_contain_text("Up to 4,000 characters")
    expect(page.get_by_test_id("char-count")).to_contain_text("too many")
    page.get_by_test_id("start-run").click()
    expect(page.get_by_test_id("error-message")).to_contain_text("the limit is 4,000")
    expect(page.get_by_test_id("form-errors")).to_be_visible()
    assert page.url.endswith("/runs/new/")
    assert page.eval_on_selector("textarea[name=message]", "t => t.value") == pasted  # all of it
    assert run_count(stack) == before
    assert page_width(page) <= viewport["width"]
    shoot(page, "run-new-limit")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1280"])
def test_a_2000_char_word_wraps_in_the_inbox_escalation_and_run_pages(login, seeded,
                                                                     viewport):
    page = login("operator").new_page()
    page.set_viewport_size(viewport)
    page.goto("/inbox/")
    expect(page.locator(f"#esc-{seeded['esc']}")).to_be_visible()
    assert page_width(page) <= viewport["width"]
    shoot(page, "inbox-long-string")
    page.goto(f"/escalations/{seeded['esc']}/")
    expect(page.get_by_test_id("esc-question")).to_contain_text("XXXX")
    assert page_width(page) <= viewport["width"]
    shoot(page, "escalation-long-string")
    page.goto(f"/runs/{seeded['run']}/")
    expect(page.get_by_test_id("run-input")).to_be_visible()
    assert page_width(page) <= viewport["width"]
    page.goto("/runs/")
    expect(page.locator(f"#run-{seeded['run']}")).to_be_visible()
    assert page_width(page) <= viewport["width"]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_overridden_run_shows_its_badge_cached_step_and_an_honest_steps_bar(login, seeded,
                                                                           viewport):
    page = login("operator").new_page()
    page.set_viewport_size(viewport)
    page.goto(f"/runs/{seeded['done']}/")
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded")
    expect(page.get_by_test_id("run-overridden")).to_have_text("overridden by operator")
    expect(page.get_by_test_id("step-cached")).to_have_text("cached (no cost)")
    steps = page.locator('[data-bar="Steps"]')
    expect(steps).to_contain_text("4 of 2")
    expect(steps).to_contain_text("limit reached")
    assert steps.locator(".bar-fill").evaluate("e => e.style.width") == "100%"
    assert page_width(page) <= viewport["width"]
    shoot(page, "run-overridden")
    page.goto("/runs/")
    expect(page.locator(f"#run-{seeded['done']}")).to_contain_text("overridden by operator")
    shoot(page, "run-list")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_another_teams_run_is_a_styled_404(login, seeded, viewport):
    page = login("operator").new_page()
    page.set_viewport_size(viewport)
    resp = page.goto("/runs/999999/")
    assert resp.status == 404
    expect(page.get_by_test_id("not-found")).to_contain_text("not in your teams")
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Inbox")
    assert page_width(page) <= viewport["width"]
    shoot(page, "404")
    page.get_by_test_id("back-to-inbox").click()
    page.wait_for_url("**/inbox/")
