"""Claims: conditional updates, races with a named winner, stale take-over, decisions
refused under someone else's claim — through the services and over HTTP (htmx and not)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from runs import claims, errors, services
from runs.errors import AlreadyDecided
from runs.models import AuditEvent, Escalation

from .console_data import client_for, escalation
from .helpers import open_escalation, refunds, submit, wait_status

HX = {"HX-Request": "true"}


def race(*calls):
    """Run ``calls`` in threads released at the same moment; their results or errors."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def runner(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:  # the loser's error is the result under test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_claim_release_and_renew_are_audited_once(demo):
    esc = escalation(demo["team"])
    op = demo["operator"]
    assert claims.claim(escalation_id=esc.pk, user=op).action == "claimed"
    assert claims.claim(escalation_id=esc.pk, user=op).action == "renewed"
    esc.refresh_from_db()
    assert esc.claimed_by == op and esc.claimed_at is not None
    claims.release(escalation_id=esc.pk, user=op)
    esc.refresh_from_db()
    assert esc.claimed_by is None and esc.claimed_at is None
    actions = list(AuditEvent.objects.filter(target_id=str(esc.pk)).order_by("pk")
                   .values_list("action", "actor__username"))
    assert actions == [("escalation.claimed", "operator"), ("escalation.released", "operator")]


@pytest.mark.parametrize("attempt", range(3))
def test_two_operators_claiming_at_once_one_wins_the_other_is_told_who(demo, attempt):
    esc = escalation(demo["team"])
    first, second = demo["operator"], demo["admin"]
    results = race(lambda: claims.claim(escalation_id=esc.pk, user=first),
                   lambda: claims.claim(escalation_id=esc.pk, user=second))
    won = [r for r in results if isinstance(r, claims.ClaimOutcome)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1 and len(lost) == 1, results
    esc.refresh_from_db()
    winner = esc.claimed_by.get_username()
    assert isinstance(lost[0], errors.ClaimedByOther)
    assert f"Claimed by {winner}" in lost[0].message
    assert AuditEvent.objects.filter(action="escalation.claimed",
                                     target_id=str(esc.pk)).count() == 1


def test_a_live_claim_cannot_be_taken_a_stale_one_can(demo, settings):
    settings.CLAIM_TIMEOUT_SECONDS = 60
    live = escalation(demo["team"], claimed_by=demo["operator"], claimed_ago=30)
    with pytest.raises(errors.ClaimedByOther, match="Claimed by operator"):
        claims.claim(escalation_id=live.pk, user=demo["admin"])
    with pytest.raises(errors.ClaimedByOther):
        claims.release(escalation_id=live.pk, user=demo["admin"])

    stale = escalation(demo["team"], claimed_by=demo["operator"], claimed_ago=61)
    outcome = claims.claim(escalation_id=stale.pk, user=demo["admin"])
    assert outcome.action == "claim_taken_over" and outcome.previous == "operator"
    stale.refresh_from_db()
    assert stale.claimed_by == demo["admin"]
    event = AuditEvent.objects.get(action="escalation.claim_taken_over")
    assert event.actor == demo["admin"] and event.detail["previous"] == "operator"


def test_decide_is_refused_while_someone_else_holds_the_claim(demo, settings):
    settings.CLAIM_TIMEOUT_SECONDS = 60
    esc = escalation(demo["team"], claimed_by=demo["operator"], claimed_ago=5)
    with pytest.raises(errors.ClaimedByOther, match="Claimed by operator"):
        services.decide(escalation_id=esc.pk, user=demo["admin"], decision="reject")
    with pytest.raises(errors.ClaimedByOther, match="Claimed by operator"):  # the API too
        services.decide(escalation_id=esc.pk, user=None, decision="reject", api_key_id=None)
    esc.refresh_from_db()
    assert esc.status == "open"

    client = client_for(demo["admin"])
    resp = client.post(f"/escalations/{esc.pk}/decide/", {"action": "reject"}, headers=HX)
    assert resp.status_code == 409 and "Claimed by operator" in resp.content.decode()
    resp = client.post(f"/escalations/{esc.pk}/decide/", {"action": "reject"})
    assert resp.status_code == 302
    assert "Claimed by operator" in client.get(resp["Location"]).content.decode()

    # the holder decides; a stale claim would not have stopped anyone either
    services.decide(escalation_id=esc.pk, user=demo["operator"], decision="reject")
    esc.refresh_from_db()
    assert esc.status == "decided" and esc.decided_by == demo["operator"]
    stale = escalation(demo["team"], claimed_by=demo["operator"], claimed_ago=61)
    services.decide(escalation_id=stale.pk, user=demo["admin"], decision="reject")


def test_claim_and_release_over_http_with_and_without_htmx(demo):
    esc = escalation(demo["team"])
    op, other = client_for(demo["operator"]), client_for(demo["admin"])
    resp = op.post(f"/escalations/{esc.pk}/claim/", {"fragment": "row", "qs": ""}, headers=HX)
    page = resp.content.decode()
    assert resp.status_code == 200 and f'id="esc-{esc.pk}"' in page and "You hold it" in page
    assert "<html" not in page

    lost = other.post(f"/escalations/{esc.pk}/claim/", headers=HX)
    assert lost.status_code == 409 and "Claimed by operator" in lost.content.decode()
    box = other.get(f"/escalations/{esc.pk}/claim/").content.decode()
    assert 'data-claim="theirs"' in box and "Claimed by <b>operator</b>" in box
    assert "Claimed by <b>operator</b>" in other.get("/inbox/").content.decode()

    plain = op.post(f"/escalations/{esc.pk}/release/", {"next": "/inbox/?claimed=mine"})
    assert plain.status_code == 302 and plain["Location"] == "/inbox/?claimed=mine"
    assert Escalation.objects.get(pk=esc.pk).claimed_by is None
    evil = other.post(f"/escalations/{esc.pk}/claim/", {"next": "https://evil.example/"})
    assert evil.status_code == 302 and evil["Location"] == f"/escalations/{esc.pk}/"
    assert Escalation.objects.get(pk=esc.pk).claimed_by == demo["admin"]
    # an inbox row's form without JavaScript: back to the inbox, its filters kept
    row = other.post(f"/escalations/{esc.pk}/release/", {"fragment": "row", "qs": "reason=x"})
    assert row.status_code == 302 and row["Location"] == "/inbox/?reason=x"


def test_claiming_a_decided_escalation_names_the_decider(demo):
    esc = escalation(demo["team"])
    services.decide(escalation_id=esc.pk, user=demo["admin"], decision="reject")
    resp = client_for(demo["operator"]).post(f"/escalations/{esc.pk}/claim/", headers=HX)
    assert resp.status_code == 409 and "Already decided by admin" in resp.content.decode()


@pytest.mark.usefixtures("celery_worker")
def test_two_operators_deciding_at_once_resume_the_run_exactly_once(demo, data_dir):
    run = submit(demo["team"], demo["operator"], "I want a refund for order 1042")
    wait_status(run, "waiting_human")
    esc = open_escalation(run)
    assert esc.priority == 10  # approval_required: set by the engine's adapter at creation
    results = race(
        lambda: services.decide(escalation_id=esc.pk, user=demo["operator"], decision="approve"),
        lambda: services.decide(escalation_id=esc.pk, user=demo["admin"], decision="approve"),
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], AlreadyDecided), results
    esc.refresh_from_db()
    assert f"Already decided by {esc.decided_by.get_username()}" in errors[0].message
    wait_status(run, "succeeded")
    assert len(refunds(data_dir)) == 1
    assert run.steps.filter(kind="human").count() == 1
    decided = AuditEvent.objects.get(action="escalation.decided", target_id=str(esc.pk))
    assert decided.actor == esc.decided_by and decided.detail["seconds_to_decision"] >= 0
