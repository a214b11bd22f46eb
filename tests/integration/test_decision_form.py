"""The decision form (issue 11): irreversible buttons ask first, approve only when something
is proposed, and a refused decision keeps what was typed, with each field's error beside
its input."""

from __future__ import annotations

import re

import pytest

from .console_data import client_for, escalation, no_resume, waiting_run  # noqa: F401

pytestmark = pytest.mark.usefixtures("no_resume")
HX = {"HX-Request": "true"}


def button(page: str, testid: str) -> str:
    found = re.search(rf'<button[^>]*data-testid="{testid}"[^>]*>(.*?)</button>', page, re.S)
    assert found, f"no {testid} button"
    return found.group(0)


def test_irreversible_actions_ask_first_and_labels_are_whole_words(demo):
    esc = escalation(demo["team"])  # issue_refund: a side effect
    page = client_for(demo["operator"]).get(f"/escalations/{esc.pk}/").content.decode()
    approve = button(page, "action-approve")
    assert 'data-confirm="Approve issue_refund? It cannot be undone."' in approve
    assert "with amount 180, order_id 1042." in approve  # sorted keys: JSONB reorders
    for testid in ("action-reject", "action-take_over", "action-abort", "action-edit_approve"):
        assert "data-confirm=" in button(page, testid), testid
    assert "data-confirm" not in button(page, "action-reply")
    assert "<u>" not in page  # no label split into pieces
    # the shortcut letter is marked inside one inline run of text (the name stays "Approve");
    # a key the label lacks follows it, hidden from the accessible name
    assert '><span class="key-label"><span class="key-letter">A</span>pprove</span></button>' \
        in approve
    assert 'aria-keyshortcuts="a"' in approve
    assert '>Abort <kbd class="key-cap" aria-hidden="true">x</kbd></button>' in button(
        page, "action-abort")
    assert "ask you to confirm" in page


def test_approving_a_final_answer_does_not_ask(demo):
    esc = escalation(demo["team"], proposed_tool="final_answer",
                     proposed_args={"answer": "Your order ships tomorrow."})
    page = client_for(demo["operator"]).get(f"/escalations/{esc.pk}/").content.decode()
    assert "data-confirm" not in button(page, "action-approve")
    assert "data-confirm" in button(page, "action-reject")


def test_nothing_proposed_offers_no_approve_and_no_a_key(demo):
    esc = escalation(demo["team"], reason="tool_failed", proposed_tool="", proposed_args={})
    page = client_for(demo["operator"]).get(f"/escalations/{esc.pk}/").content.decode()
    assert 'data-testid="action-approve"' not in page and 'data-key="a"' not in page
    assert "<kbd>a</kbd> <kbd>r</kbd>" not in page
    assert "nothing to approve" in page


def test_cancel_run_asks_first(demo):
    run = waiting_run(demo["team"])
    page = client_for(demo["operator"]).get(f"/runs/{run.pk}/").content.decode()
    assert f'data-confirm="Cancel run #{run.pk}?"' in button(page, "cancel-run")


def test_a_refused_extension_keeps_the_values_and_names_each_field(demo):
    esc = escalation(demo["team"], reason="step_limit", proposed_tool="", proposed_args={})
    resp = client_for(demo["operator"]).post(
        f"/escalations/{esc.pk}/decide/",
        {"action": "extend_budget", "max_steps": "1", "max_tokens": "123456",
         "message": "one more go"}, headers=HX)
    page = resp.content.decode()
    assert resp.status_code == 422
    steps = re.search(r'<input[^>]*name="max_steps"[^>]*>', page).group(0)
    assert 'value="1"' in steps and 'aria-invalid="true"' in steps
    assert 'value="123456"' in re.search(r'<input[^>]*name="max_tokens"[^>]*>', page).group(0)
    error = re.search(r'data-testid="error-max_steps">([^<]*)<', page).group(1)
    assert "Cannot go below the current limit" in error
    assert 'data-testid="error-max_tokens"' not in page
    assert ">one more go</textarea>" in page
    assert 'Extend <span class="key-letter">b</span>udget &amp; resume</span></button>' in page


def test_a_refused_reply_keeps_the_message(demo):
    esc = escalation(demo["team"], reason="low_confidence", claimed_by=demo["admin"])
    resp = client_for(demo["operator"]).post(
        f"/escalations/{esc.pk}/decide/", {"action": "reply", "message": "It is order 1001"},
        headers=HX)
    assert resp.status_code == 409
    assert ">It is order 1001</textarea>" in resp.content.decode()
