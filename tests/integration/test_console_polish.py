"""Console polish (issue 11): the task form's limit, styled 403/404/500 pages, one label per
status, the admin's plural, cached steps, an honest steps bar, the "overridden" badge."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.template.loader import render_to_string
from django.test import Client

from agentdesk.agents.support_refunds.agent import MAX_MESSAGE_CHARS
from runs.models import PolicySnapshotRecord, Run, Step, WebhookDelivery

from .console_data import client_for, escalation, waiting_run
from .console_data import no_resume as no_resume  # a fixture

pytestmark = pytest.mark.usefixtures("no_resume")


def textarea_value(page: str) -> str:
    match = re.search(r'<textarea name="message"[^>]*>\n?(.*?)</textarea>', page, re.S)
    assert match, "no message textarea"
    return html.unescape(match.group(1))


# 1. The input limit: shown, not enforced by truncation, refused by the server ------------

def test_task_form_shows_the_limit_and_has_no_maxlength(demo):
    page = client_for(demo["operator"]).get("/runs/new/").content.decode()
    textarea = re.search(r'<textarea name="message"[^>]*>', page).group(0)
    assert "maxlength" not in textarea  # the browser would cut a long paste silently
    assert f'data-max-chars="{MAX_MESSAGE_CHARS}"' in textarea
    assert "Up to 4,000 characters" in page and 'data-testid="char-count"' in page


def test_a_300_kb_message_is_refused_with_a_field_error_keeping_the_text(demo):
    agent = demo["team"].agents.get(slug="support-refunds")
    pasted = "refund order 1042 please " + "x" * 300_000
    resp = client_for(demo["operator"]).post("/runs/new/", {"agent": agent.pk,
                                                           "message": pasted})
    page = resp.content.decode()
    assert resp.status_code == 400
    assert 'data-testid="error-message"' in page
    assert f"{len(pasted):,} characters long" in page and "the limit is 4,000" in page
    assert textarea_value(page) == pasted  # nothing typed is lost
    assert not Run.objects.exists()


def test_a_message_at_the_limit_is_accepted(demo):
    agent = demo["team"].agents.get(slug="support-refunds")
    resp = client_for(demo["operator"]).post(
        "/runs/new/", {"agent": agent.pk, "message": "y" * MAX_MESSAGE_CHARS})
    assert resp.status_code == 302 and Run.objects.count() == 1


# 3. Styled 404 / 403 / 500 inside the console ---------------------------------------------

def test_another_teams_run_and_escalation_are_a_styled_404(demo):
    esc = escalation(demo["team"])
    client = client_for(demo["outsider"])
    for url in (f"/runs/{esc.run_id}/", f"/escalations/{esc.pk}/", "/no-such-page/"):
        resp = client.get(url)
        page = resp.content.decode()
        assert resp.status_code == 404, url
        assert 'class="topbar"' in page and 'class="nav-links"' in page  # the console nav
        assert 'data-testid="not-found"' in page and "not in your teams" in page
        assert 'href="/inbox/" data-testid="back-to-inbox"' in page
        assert "Approve this?" not in page  # nothing of the other team leaks


def test_403_is_styled_inside_the_console(demo, rf):
    # A console page that refuses raises PermissionDenied: Django renders templates/403.html.
    from django.core.exceptions import PermissionDenied
    from django.views.defaults import permission_denied

    request = rf.get("/runs/1/")
    request.user = demo["operator"]
    resp = permission_denied(request, PermissionDenied("Only team admins may do this."))
    page = resp.content.decode()
    assert resp.status_code == 403 and 'class="nav-links"' in page
    assert 'data-testid="forbidden"' in page and "Only team admins may do this." in page
    assert 'data-testid="back-to-inbox"' in page


def test_csrf_failure_is_a_styled_403(demo):
    client = Client(enforce_csrf_checks=True)
    client.force_login(demo["operator"])
    resp = client.post("/runs/new/", {"message": "hi"})
    page = resp.content.decode()
    # Django renders it without the request (so without the user's links), still styled.
    assert resp.status_code == 403 and 'class="topbar"' in page and "app.css" in page
    assert "form has expired" in page and "reload the page" in page


def test_500_page_renders_without_a_request():
    page = render_to_string("500.html")
    assert "Something went wrong" in page and 'href="/inbox/"' in page


# 4. One label per status ------------------------------------------------------------------

@pytest.mark.parametrize(("value", "label"), [
    ("waiting_human", "waiting for human"), ("succeeded", "succeeded"), ("failed", "failed"),
    ("aborted", "aborted"), ("queued", "queued"), ("running", "running"),
    ("approval_required", "approval required"), ("aborted_by_operator", "aborted by operator"),
    ("", ""), (None, ""),
])
def test_status_label(value, label):
    from runs.templatetags.console import status_label

    assert status_label(value) == label


def test_waiting_runs_read_waiting_for_human_everywhere(demo):
    esc = escalation(demo["team"], reason="approval_required")
    client = client_for(demo["operator"])
    pages = {url: client.get(url).content.decode() for url in
             ("/runs/", f"/runs/{esc.run_id}/", f"/escalations/{esc.pk}/", "/inbox/")}
    for url, page in pages.items():
        assert "waiting_human<" not in page and "waiting human" not in page, url
    for url in ("/runs/", f"/runs/{esc.run_id}/", f"/escalations/{esc.pk}/"):
        assert re.search(r'class="badge status status-waiting_human"[^>]*>waiting for human<',
                         pages[url]), url
    assert '<option value="waiting_human">waiting for human</option>' in pages["/runs/"]
    assert "approval required" in pages["/inbox/"]


def test_ended_runs_keep_their_one_word_labels(demo):
    run = waiting_run(demo["team"])
    client = client_for(demo["operator"])
    for status in ("succeeded", "aborted", "failed"):
        Run.objects.filter(pk=run.pk).update(status=status)
        page = client.get(f"/runs/{run.pk}/").content.decode()
        assert f'data-testid="run-status">{status}<' in page


# 5. The admin's plural --------------------------------------------------------------------

def test_admin_says_webhook_deliveries(demo):
    assert WebhookDelivery._meta.verbose_name_plural == "webhook deliveries"
    demo["admin"].user_permissions.add(*Permission.objects.filter(
        codename__endswith="webhookdelivery"))
    page = client_for(demo["admin"]).get("/admin/").content.decode()
    assert "Webhook deliveries" in page and "deliverys" not in page


# 6. Cached model steps --------------------------------------------------------------------

def test_a_cached_model_step_says_cached_no_cost(demo):
    run = waiting_run(demo["team"])
    Step.objects.create(run=run, index=0, kind="model", name="sim-small", tier="small",
                        args={"tier": "small", "cache_hit": True})
    Step.objects.create(run=run, index=1, kind="model", name="sim-small", tier="small",
                        tokens_in=120, tokens_out=30, cost_usd=Decimal("0.0004"))
    page = client_for(demo["operator"]).get(f"/runs/{run.pk}/").content.decode()
    steps = page.split('data-testid="step"')[1:]
    assert 'data-testid="step-cached"' in steps[0] and "cached (no cost)" in steps[0]
    assert "0 in · 0 out" not in steps[0]
    assert "cached (no cost)" not in steps[1] and "120 in · 30 out" in steps[1]


# 7. An honest steps bar -------------------------------------------------------------------

def usage_bar(page: str, label: str) -> str:
    match = re.search(rf'<div class="bar [^"]*"[^>]*data-bar="{label}".*?</div>\s*</div>',
                      page, re.S)
    assert match, f"no {label} bar"
    return match.group(0)


def test_steps_past_the_limit_read_limit_reached_with_a_full_bar(demo):
    run = waiting_run(demo["team"])
    snapshot = {**run.policy_snapshot, "max_steps": 2}
    Run.objects.filter(pk=run.pk).update(step_count=4,
                                         snapshot=PolicySnapshotRecord.of(snapshot))
    page = client_for(demo["operator"]).get(f"/runs/{run.pk}/").content.decode()
    bar = usage_bar(page, "Steps")
    assert "4 / 2" not in bar
    assert re.search(r"4 of 2\s*<b[^>]*>\s*— limit reached", bar)
    assert "bar-over" in bar and "width: 100.0%" in bar


def test_steps_under_the_limit_read_plainly(demo):
    run = waiting_run(demo["team"])
    snapshot = {**run.policy_snapshot, "max_steps": 8}
    Run.objects.filter(pk=run.pk).update(step_count=2,
                                         snapshot=PolicySnapshotRecord.of(snapshot))
    bar = usage_bar(client_for(demo["operator"]).get(f"/runs/{run.pk}/").content.decode(),
                    "Steps")
    assert "2 of 8" in bar and "limit reached" not in bar and "bar-ok" in bar
    assert "width: 25.0%" in bar


def test_usage_bars_report_over_and_at_limit():
    run = Run(step_count=4, tokens_in=0, tokens_out=0, cost_usd=Decimal("0"),
              policy_snapshot={"max_steps": 2, "max_tokens": 1000, "max_cost_usd": "0.05",
                               "max_seconds": 60})
    bars = {b["label"]: b for b in run.usage_bars}
    assert bars["Steps"]["pct"] == 100.0 and bars["Steps"]["reached"]
    assert bars["Steps"]["over"] and not bars["Tokens"]["reached"]


# 8. Overridden outcomes -------------------------------------------------------------------

def test_an_overridden_run_says_so_on_its_page_and_in_the_list(demo):
    plain, overridden = waiting_run(demo["team"]), waiting_run(demo["team"])
    Run.objects.filter(pk__in=[plain.pk, overridden.pk]).update(status="succeeded", reason="")
    Run.objects.filter(pk=overridden.pk).update(overridden=True)
    client = client_for(demo["operator"])
    page = client.get(f"/runs/{overridden.pk}/").content.decode()
    assert 'data-testid="run-status">succeeded<' in page
    assert re.search(r'data-testid="run-overridden"[^>]*>overridden by operator<', page)
    assert "overridden by operator" not in client.get(f"/runs/{plain.pk}/").content.decode()
    rows = client.get("/runs/").content.decode().split('data-testid="run-row"')[1:]
    by_id = {int(re.search(r"#(\d+)", row).group(1)): row for row in rows}
    assert "overridden by operator" in by_id[overridden.pk]
    assert "overridden by operator" not in by_id[plain.pk]


def test_dashboard_counts_succeeded_after_override_apart(demo):
    runs = [waiting_run(demo["team"]) for _ in range(3)]
    Run.objects.filter(pk__in=[r.pk for r in runs]).update(status="succeeded", reason="")
    Run.objects.filter(pk=runs[0].pk).update(overridden=True)
    page = client_for(demo["operator"]).get("/dashboard/").content.decode()
    assert "succeeded after override" in page


def test_audit_shows_why_a_run_ended_with_the_same_label(demo):
    from runs import services

    esc = escalation(demo["team"])
    services.cancel_run(run_id=esc.run_id, user=demo["operator"])
    page = client_for(demo["operator"]).get("/audit/").content.decode()
    assert re.search(r'data-testid="audit-reason">aborted by operator<', page)
