"""Bulk triage (``runs.bulk``): each selected escalation decided, claimed or assigned by the
same writer as alone, and reported item by item: decided, someone else decided first, not
permitted, invalid for this item; over HTTP with htmx and without; racing single decisions;
and through the real worker, each run resumed once."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from runs import bulk, claims, services
from runs.errors import AlreadyDecided, Invalid
from runs.models import Agent, AuditEvent, Escalation, Membership, Policy, Run

from .console_data import client_for, escalation, no_resume  # noqa: F401 (a fixture)
from .helpers import open_escalation, refunds, submit, wait_status
from .test_console_claims import race

HX = {"HX-Request": "true"}


def kinds(result: bulk.BulkResult) -> dict[int, str]:
    return {item.escalation_id: item.kind for item in result.items}


@pytest.mark.usefixtures("no_resume")
def test_bulk_approve_reports_each_item_as_it_came_out(demo, settings):
    settings.CLAIM_TIMEOUT_SECONDS = 300
    team, op, admin = demo["team"], demo["operator"], demo["admin"]
    free, also_free = escalation(team), escalation(team)
    decided_first = escalation(team)
    services.decide(escalation_id=decided_first.pk, user=admin, decision="approve")
    nothing_proposed = escalation(team, reason="low_confidence", proposed_tool="",
                                  proposed_args={})
    held = escalation(team, claimed_by=admin, claimed_ago=10)
    ids = [free.pk, decided_first.pk, nothing_proposed.pk, held.pk, also_free.pk, 987654]

    result = bulk.apply(user=op, action="approve", escalation_ids=[str(i) for i in ids])

    assert [item.escalation_id for item in result.items] == ids  # in the order given
    got = kinds(result)
    assert got[free.pk] == got[also_free.pk] == bulk.DONE
    assert got[decided_first.pk] == bulk.LOST
    assert got[nothing_proposed.pk] == bulk.INVALID
    assert got[held.pk] == bulk.NOT_PERMITTED
    assert got[987654] == bulk.NOT_PERMITTED
    by_id = {item.escalation_id: item for item in result.items}
    assert by_id[decided_first.pk].label == "someone else decided first"
    assert "Already decided by admin (approve)" in by_id[decided_first.pk].message
    assert "nothing to approve" in by_id[nothing_proposed.pk].message
    assert "Claimed by admin" in by_id[held.pk].message
    assert by_id[987654].message == "Not among your teams' escalations."
    assert result.counts["decided"] == 2
    assert result.summary.startswith(f"Approve {len(ids)}: 2 decided, 1 someone else decided")

    for esc in (free, also_free):
        esc.refresh_from_db()
        assert (esc.status, esc.decision, esc.decided_by) == ("decided", "approve", op)
        assert Run.objects.get(pk=esc.run_id).status == "queued"  # resumed, once
    decided_first.refresh_from_db()
    assert decided_first.decided_by == admin  # the loser changed nothing
    for esc in (nothing_proposed, held):
        esc.refresh_from_db()
        assert esc.status == "open"
    audited = AuditEvent.objects.filter(action="escalation.decided")
    assert sorted(audited.values_list("target_id", flat=True)) == sorted(
        str(e.pk) for e in (free, also_free, decided_first))


@pytest.mark.usefixtures("no_resume")
def test_another_teams_escalation_is_not_permitted_and_untouched(demo):
    Agent.objects.create(team=demo["other_team"], slug="support-refunds", name="Refunds",
                         policy=Policy.objects.order_by("pk").first())
    theirs = escalation(demo["other_team"])
    result = bulk.apply(user=demo["operator"], action="reject", escalation_ids=[theirs.pk])
    assert kinds(result) == {theirs.pk: bulk.NOT_PERMITTED}
    theirs.refresh_from_db()
    assert theirs.status == "open"
    # ... and an outsider learns nothing about the demo team's escalations either
    ours = escalation(demo["team"])
    result = bulk.apply(user=demo["outsider"], action="claim", escalation_ids=[ours.pk])
    assert kinds(result) == {ours.pk: bulk.NOT_PERMITTED}
    assert result.items[0].message == "Not among your teams' escalations."


@pytest.mark.usefixtures("no_resume")
def test_a_viewer_may_act_on_none_of_them(demo):
    viewer = get_user_model().objects.create_user("viewer", password="test-password-1")
    Membership.objects.create(user=viewer, team=demo["team"], role=Membership.Role.VIEWER)
    esc = escalation(demo["team"])
    for action in ("approve", "reject", "claim"):
        result = bulk.apply(user=viewer, action=action, escalation_ids=[esc.pk])
        assert kinds(result) == {esc.pk: bulk.NOT_PERMITTED}, action
        assert "viewer" in result.items[0].message
    esc.refresh_from_db()
    assert (esc.status, esc.claimed_by) == ("open", None)


@pytest.mark.usefixtures("no_resume")
def test_bulk_reject_sends_the_one_message_with_each_decision(demo):
    escs = [escalation(demo["team"]) for _ in range(3)]
    result = bulk.apply(user=demo["operator"], action="reject",
                        escalation_ids=[e.pk for e in escs], message="  Not without a receipt. ")
    assert set(kinds(result).values()) == {bulk.DONE}
    for esc in escs:
        esc.refresh_from_db()
        assert (esc.decision, esc.decision_message) == ("reject", "Not without a receipt.")
        run = Run.objects.get(pk=esc.run_id)
        assert run.state["human_input"]["message"] == "Not without a receipt."


def test_bulk_claim_takes_free_ones_and_names_who_holds_the_others(demo, settings):
    settings.CLAIM_TIMEOUT_SECONDS = 300
    team, op, admin = demo["team"], demo["operator"], demo["admin"]
    free = escalation(team)
    mine = escalation(team, claimed_by=op, claimed_ago=30)
    theirs = escalation(team, claimed_by=admin, claimed_ago=30)
    stale = escalation(team, claimed_by=admin, claimed_ago=900)
    gone = escalation(team, status="decided", decision="approve", decided_by=admin)

    result = bulk.apply(user=op, action="claim",
                        escalation_ids=[free.pk, mine.pk, theirs.pk, stale.pk, gone.pk])

    got = kinds(result)
    assert got == {free.pk: bulk.DONE, mine.pk: bulk.DONE, theirs.pk: bulk.NOT_PERMITTED,
                   stale.pk: bulk.DONE, gone.pk: bulk.LOST}
    by_id = {item.escalation_id: item for item in result.items}
    assert by_id[free.pk].message == "Claimed."
    assert "renewed" in by_id[mine.pk].message
    assert by_id[stale.pk].message == "Taken over from admin (stale)."
    assert "Claimed by admin" in by_id[theirs.pk].message
    for esc in (free, mine, stale):
        esc.refresh_from_db()
        assert esc.claimed_by == op
    theirs.refresh_from_db()
    assert theirs.claimed_by == admin


def test_bulk_assign_goes_through_the_assignment_service(demo):
    team, op, admin = demo["team"], demo["operator"], demo["admin"]
    a, b = escalation(team), escalation(team)
    result = bulk.apply(user=op, action="assign", escalation_ids=[a.pk, b.pk],
                        assignee=str(admin.pk))
    assert set(kinds(result).values()) == {bulk.DONE}
    assert result.items[0].message == "Assigned to admin."
    for esc in (a, b):
        esc.refresh_from_db()
        assert esc.assigned_to == admin
    assert AuditEvent.objects.filter(action="escalation.assigned").count() == 2

    result = bulk.apply(user=op, action="assign", escalation_ids=[a.pk], assignee="me")
    assert result.items[0].message == "Assigned to you (was admin)."
    # someone who is not a member of the escalation's team: invalid for this item
    result = bulk.apply(user=op, action="assign", escalation_ids=[b.pk],
                        assignee=str(demo["outsider"].pk))
    assert kinds(result) == {b.pk: bulk.INVALID}
    result = bulk.apply(user=op, action="assign", escalation_ids=[a.pk, b.pk],
                        assignee=bulk.NOBODY)
    assert [item.message for item in result.items] == ["Unassigned (was operator).",
                                                       "Unassigned (was admin)."]
    with pytest.raises(Invalid, match="Choose whom"):
        bulk.apply(user=op, action="assign", escalation_ids=[a.pk], assignee="")


@pytest.mark.parametrize(("action", "ids", "message", "refusal"), [
    ("approve", [], "", "Select at least one"),
    ("delete", [1], "", "Unknown bulk action"),
    ("approve", ["1", "x"], "", "is not an escalation id"),
    ("approve", ["-3"], "", "is not an escalation id"),
    ("approve", list(range(1, bulk.MAX_ITEMS + 2)), "", f"at most {bulk.MAX_ITEMS}"),
    ("reject", [1], "x" * 4001, "too long"),
])
def test_the_whole_request_is_refused_only_for_what_no_item_could_fix(demo, action, ids,
                                                                    message, refusal):
    esc = escalation(demo["team"])
    with pytest.raises(Invalid, match=refusal):
        bulk.apply(user=demo["operator"], action=action, escalation_ids=ids, message=message)
    esc.refresh_from_db()
    assert esc.status == "open"


@pytest.mark.usefixtures("no_resume")
def test_an_id_twice_is_acted_on_once(demo):
    esc = escalation(demo["team"])
    result = bulk.apply(user=demo["operator"], action="approve",
                        escalation_ids=[esc.pk, str(esc.pk)])
    assert [i.escalation_id for i in result.items] == [esc.pk]


@pytest.mark.usefixtures("no_resume")
def test_a_bug_in_one_item_is_reported_and_the_others_go_on(demo, monkeypatch):
    first, broken, last = (escalation(demo["team"]) for _ in range(3))
    real = services.decide

    def decide(**kwargs):
        if kwargs["escalation_id"] == broken.pk:
            raise RuntimeError("boom")
        return real(**kwargs)

    monkeypatch.setattr(services, "decide", decide)
    result = bulk.apply(user=demo["operator"], action="approve",
                        escalation_ids=[first.pk, broken.pk, last.pk])
    assert kinds(result) == {first.pk: bulk.DONE, broken.pk: bulk.FAILED, last.pk: bulk.DONE}


@pytest.mark.usefixtures("no_resume")
@pytest.mark.parametrize("attempt", range(2))
def test_bulk_racing_single_decisions_decides_each_escalation_exactly_once(demo, attempt):
    team, op, admin = demo["team"], demo["operator"], demo["admin"]
    escs = [escalation(team) for _ in range(8)]
    ids = [e.pk for e in escs]

    def singles():
        won = []
        for esc_id in reversed(ids):  # from the other end: they meet in the middle
            try:
                services.decide(escalation_id=esc_id, user=admin, decision="reject")
                won.append(esc_id)
            except AlreadyDecided:  # the bulk got there first
                pass
        return won

    result, admin_won = race(
        lambda: bulk.apply(user=op, action="approve", escalation_ids=ids), singles)
    assert isinstance(result, bulk.BulkResult), result
    got = kinds(result)
    assert {i for i, k in got.items() if k == bulk.DONE}.isdisjoint(admin_won)
    assert {i for i, k in got.items() if k == bulk.LOST} == set(admin_won)
    assert set(got.values()) <= {bulk.DONE, bulk.LOST}
    for esc in Escalation.objects.filter(pk__in=ids):
        assert esc.status == "decided"
        assert (esc.decided_by, esc.decision) in ((op, "approve"), (admin, "reject"))
        assert AuditEvent.objects.filter(action="escalation.decided",
                                         target_id=str(esc.pk)).count() == 1
        assert Run.objects.get(pk=esc.run_id).status == "queued"


@pytest.mark.usefixtures("no_resume")
def test_over_http_htmx_gets_the_results_panel_a_plain_post_a_redirect(demo):
    team = demo["team"]
    first, second = escalation(team), escalation(team)
    services.decide(escalation_id=second.pk, user=demo["admin"], decision="approve")
    client = client_for(demo["operator"])

    resp = client.post("/inbox/bulk/", {"action": "approve", "ids": [first.pk, second.pk]},
                       headers=HX)
    html = resp.content.decode()
    assert resp.status_code == 200
    assert 'data-testid="bulk-results"' in html and 'data-action="approve"' in html
    assert f'data-esc-id="{first.pk}" data-kind="done"' in html
    assert f'data-esc-id="{second.pk}" data-kind="lost"' in html
    assert "Approve 2: 1 decided, 1 someone else decided first." in html

    third = escalation(team)
    resp = client.post("/inbox/bulk/", {"action": "reject", "ids": [third.pk],
                                        "message": "No.", "next": "/inbox/?team=demo"})
    assert resp.status_code == 302 and resp["Location"] == "/inbox/?team=demo"
    page = client.get("/inbox/?team=demo").content.decode()
    assert f'data-esc-id="{third.pk}" data-kind="done"' in page  # shown once…
    assert "bulk-item" not in client.get("/inbox/").content.decode()  # …then gone

    resp = client.post("/inbox/bulk/", {"action": "approve"}, headers=HX)
    assert resp.status_code == 422 and "Select at least one escalation." in resp.content.decode()
    resp = client.post("/inbox/bulk/", {"action": "approve", "ids": [third.pk],
                                        "next": "https://evil.example/"})
    assert resp["Location"] == "/inbox/"  # never off-site
    assert client_for(None).post("/inbox/bulk/", {"action": "approve",
                                                  "ids": [first.pk]}).status_code == 302
    assert client.get("/inbox/bulk/").status_code == 405


def test_the_inbox_renders_a_labelled_box_per_row_and_the_bulk_bar(demo):
    esc = escalation(demo["team"])
    html = client_for(demo["operator"]).get("/inbox/").content.decode()
    assert f'value="{esc.pk}" form="bulk-form" aria-describedby="esc-q-{esc.pk}"' in html
    assert f'<span class="sr-only">Select escalation #{esc.pk}</span>' in html
    assert 'id="bulk-form"' in html and 'data-testid="bulk-approve"' in html
    assert 'id="inbox-announcer" class="sr-only" role="status"' in html
    assert f'<option value="{demo["admin"].pk}">admin</option>' in html  # assign to…
    assert 'value="{}"'.format(demo["outsider"].pk) not in html  # not a member of demo


@pytest.mark.usefixtures("celery_worker")
def test_bulk_approve_resumes_each_run_once_through_the_worker(demo, data_dir):
    runs = [submit(demo["team"], demo["operator"], f"I want a refund for order {n}")
            for n in ("1042", "1042", "1042")]
    escs = [open_escalation(wait_status(run, "waiting_human")) for run in runs]
    result = bulk.apply(user=demo["operator"], action="approve",
                        escalation_ids=[e.pk for e in escs])
    assert set(kinds(result).values()) == {bulk.DONE}
    for run in runs:
        wait_status(run, "succeeded")
        assert run.steps.filter(kind="human").count() == 1
    assert len(refunds(data_dir)) == 3  # one refund per approval, none twice
    again = bulk.apply(user=demo["admin"], action="approve",
                       escalation_ids=[e.pk for e in escs])
    assert set(kinds(again).values()) == {bulk.LOST}
    assert all("Already decided by operator" in i.message for i in again.items)
    assert len(refunds(data_dir)) == 3


def test_claim_outcome_counts_group_by_kind(demo):
    free = escalation(demo["team"])
    result = bulk.apply(user=demo["operator"], action="claim", escalation_ids=[free.pk, 999999])
    assert result.counts == {"claimed": 1, "not permitted": 1}
    assert result.as_dict()["counts"] == [("claimed", 1), ("not permitted", 1)]
    assert claims.held_by_other(Escalation.objects.get(pk=free.pk), demo["admin"])
