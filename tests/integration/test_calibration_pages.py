"""Calibration per agent and tier (/calibration/, the dashboard), applying the suggested
threshold (who may, the audit, the snapshots), and the review queue (/review/)."""

from __future__ import annotations

import re

import pytest

from runs import calibrations, services
from runs.models import Agent, AuditEvent, ConfidenceLabel, Policy, ReviewItem, Run, Step

from .calibration_data import seed_labels
from .console_data import client_for, personas
from .console_data import no_resume as no_resume  # a fixture

pytestmark = pytest.mark.usefixtures("no_resume")
HX = {"HX-Request": "true"}


def agent(demo) -> Agent:
    return Agent.objects.select_related("policy").get(team=demo["team"], slug="support-refunds")


def suggestion(demo) -> float:
    result, _ = calibrations.calibrate_tier(agent(demo), "small")
    assert result.enough and result.threshold is not None
    return result.threshold


def apply(user, demo, threshold: float, tier: str = "small"):
    return client_for(user).post("/calibration/apply/", {
        "agent": agent(demo).pk, "tier": tier, "threshold": repr(threshold)}, follow=True)


def test_too_few_labels_say_how_many_more_are_needed(demo):
    seed_labels(demo["team"], 12)
    html = client_for(demo["operator"]).get("/calibration/").content.decode()
    assert "12 labels; 38 more needed" in html
    assert 'data-testid="apply-threshold"' not in html
    assert "No labels yet; 50 needed" in html  # the large tier has none
    dash = client_for(demo["operator"]).get("/dashboard/").content.decode()
    assert "12 labels; 38 more needed" in dash and 'href="/calibration/"' in dash


def test_enough_labels_give_a_diagram_ece_and_a_threshold(demo):
    seed_labels(demo["team"], 300)
    seed_labels(demo["team"], 30, tier="large", seed=3)
    result, models = calibrations.calibrate_tier(agent(demo), "small")
    assert result.count == 300 and models == ("sim-small",)
    html = client_for(demo["admin"]).get("/calibration/").content.decode()
    card = html.split('data-testid="calibration-support-refunds-small"')[1] \
        .split("</section>")[0]
    assert 'class="chart chart-reliability"' in card and "accuracy per bin" in card
    assert re.search(r'data-testid="calibration-count">300<', card)
    assert f'data-testid="calibration-ece">{result.ece:.3f}<' in card
    assert f'data-testid="calibration-suggested">{result.threshold:.2f}<' in card
    assert f"Apply threshold {result.threshold:.2f}" in card
    assert "30 labels; 20 more needed" in html  # the large tier
    assert "<title>" in card and "mean confidence" in card  # each bin has a tooltip


def test_the_window_reads_only_the_last_n_labels(demo):
    seed_labels(demo["team"], 120)
    Policy.objects.update(calibration_window=60)
    result, _ = calibrations.calibrate_tier(agent(demo), "small")
    assert result.count == 60


def test_only_team_admins_and_superusers_may_apply(demo):
    people = personas(demo)
    seed_labels(demo["team"], 300)
    value, before = suggestion(demo), agent(demo).policy.confidence_threshold
    refused = apply(people["operator"], demo, value)
    assert refused.status_code == 403
    assert "Only an admin of the policy&#x27;s team" in refused.content.decode()
    assert apply(people["outsider"], demo, value).status_code == 404
    html = client_for(people["operator"]).get("/calibration/").content.decode()
    assert 'data-testid="apply-threshold"' not in html and "An admin of the policy's team" in html
    assert Policy.objects.get().confidence_threshold == before
    assert not AuditEvent.objects.filter(action="policy.threshold_applied").exists()

    done = apply(people["admin"], demo, value)  # a team admin, not a superuser
    assert f"{before:.2f} → {value:.2f}" in done.content.decode()
    assert Policy.objects.get().confidence_threshold == value
    event = AuditEvent.objects.get(action="policy.threshold_applied")
    assert event.actor == people["admin"] and event.team == demo["team"]
    assert event.detail["before"] == {"confidence_threshold": before}
    assert event.detail["after"] == {"confidence_threshold": value}
    assert event.detail["labels"] == 300 and event.detail["tier"] == "small"
    audit = client_for(people["admin"]).get("/audit/").content.decode()
    assert "applied calibrated threshold" in audit
    again = apply(people["admin"], demo, value)
    assert "already uses" in again.content.decode()


def test_a_superuser_may_apply_and_new_runs_snapshot_it(demo):
    seed_labels(demo["team"], 300)
    value = suggestion(demo)
    Policy.objects.update(confidence_threshold=0.5)
    old = services.submit_run(team=demo["team"], agent_slug="support-refunds",
                              task_input={"message": "Where is my order 1077?"}, user_id=None)
    apply(demo["admin"], demo, value)  # the demo admin is a superuser
    new = services.submit_run(team=demo["team"], agent_slug="support-refunds",
                              task_input={"message": "Where is my order 1077?"}, user_id=None)
    assert Run.objects.get(pk=new.pk).policy.confidence_threshold == value
    assert Run.objects.get(pk=old.pk).policy.confidence_threshold == 0.5  # keeps its own


def test_a_suggestion_that_changed_meanwhile_is_not_applied(demo):
    seed_labels(demo["team"], 300)
    value = suggestion(demo)
    page = apply(demo["admin"], demo, round(value - 0.07, 4))
    assert "The suggestion changed since the page was loaded" in page.content.decode()
    assert Policy.objects.get().confidence_threshold == 0.7


# -- the review queue ------------------------------------------------------------------------


def sampled(demo, answer: str = "Your order 1077 is in transit.") -> ReviewItem:
    a = agent(demo)
    run = Run.objects.create(team=demo["team"], agent=a, input={"message": "Where is 1077?"},
                             status="succeeded", answer=answer, state={},
                             policy_snapshot=a.policy.snapshot().model_dump(mode="json"))
    Step.objects.create(run=run, index=0, kind="model", tier="small", model="sim-small",
                        confidence=0.93)
    return ReviewItem.objects.create(team=demo["team"], run=run, agent=a, step_index=0,
                                     tier="small", model="sim-small", confidence=0.93)


def test_the_queue_shows_task_answer_and_confidence_to_the_team_only(demo):
    item = sampled(demo)
    html = client_for(demo["operator"]).get("/review/").content.decode()
    assert "Where is 1077?" in html and "Your order 1077 is in transit." in html
    assert ">0.93<" in html and f'action="/review/{item.pk}/"' in html
    assert ">Approve</button>" in html and ">Flag</button>" in html
    assert 'href="/review/"' in html  # the nav link
    outsider = client_for(demo["outsider"])
    assert "Where is 1077?" not in outsider.get("/review/").content.decode()
    assert outsider.post(f"/review/{item.pk}/", {"verdict": "flag"}).status_code == 404


def test_approve_and_flag_are_labels_and_the_second_reviewer_is_told(demo):
    right, wrong = sampled(demo), sampled(demo, answer="Refund issued.")
    op = client_for(demo["operator"])
    page = op.post(f"/review/{right.pk}/", {"verdict": "approve"}, headers=HX)
    assert page.status_code == 200 and "the agent was right" in page.content.decode()
    late = client_for(demo["admin"]).post(f"/review/{right.pk}/", {"verdict": "flag"},
                                          headers=HX)
    assert late.status_code == 409
    assert "Already reviewed by operator (approved)" in late.content.decode()
    op.post(f"/review/{wrong.pk}/", {"verdict": "flag"})
    got = {(lb.run_id, lb.correct, lb.source, lb.confidence, lb.decided_by_id)
           for lb in ConfidenceLabel.objects.all()}
    assert got == {(right.run_id, True, "review", 0.93, demo["operator"].pk),
                   (wrong.run_id, False, "review", 0.93, demo["operator"].pk)}
    right.refresh_from_db()
    assert right.status == "approved" and right.reviewed_by == demo["operator"]
    assert AuditEvent.objects.filter(action="run.reviewed").count() == 2
    assert op.post(f"/review/{right.pk}/", {"verdict": "maybe"}, headers=HX).status_code == 400
    html = op.get("/review/").content.decode()
    assert "Nothing to review." in html and html.count('data-testid="reviewed-row"') == 2
