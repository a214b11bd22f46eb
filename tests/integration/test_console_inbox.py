"""The inbox: triage order, filters, search, counts, pages, scale, and live signals."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs import claims, events, selectors
from runs.models import Agent, Escalation, Membership, Policy

from .console_data import client_for, escalation, many_escalations
from .test_live import bind_here, connect, receive_until

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def unbind_loop():
    yield
    events.bind_loop(None)


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-testid="inbox-row" data-esc-id="(\d+)"', html)]


def count(html: str, testid: str) -> int:
    return int(re.search(rf'data-testid="{testid}">(\d+)<', html).group(1))


def test_rows_are_sorted_by_priority_then_time_left(demo):
    team = demo["team"]
    low = escalation(team, reason="low_confidence", deadline_in=60)
    no_deadline = escalation(team, reason="approval_required", deadline_in=None)
    later = escalation(team, reason="approval_required", deadline_in=3000)
    sooner = escalation(team, reason="tool_failed", deadline_in=100)
    bound = escalation(team, reason="step_limit", deadline_in=10)
    other = escalation(team, reason="rejected", deadline_in=5)  # unknown to triage: 50
    html = client_for(demo["operator"]).get("/inbox/").content.decode()
    assert row_ids(html) == [sooner.pk, later.pk, no_deadline.pk, bound.pk, low.pk, other.pk]
    assert [e.priority for e in (sooner, bound, low, other)] == [10, 20, 30, 50]
    assert "left" in html  # the time left before the SLA deadline is shown


def test_filters_search_and_counts(demo):
    team, op, admin = demo["team"], demo["operator"], demo["admin"]
    mine = escalation(team, reason="approval_required", claimed_by=op,
                      message="Refund my headphones")
    theirs = escalation(team, reason="low_confidence", claimed_by=admin,
                        question="Which order do you mean?")
    free = escalation(team, reason="low_confidence", message="Where is my parcel?")
    escalation(team, reason="tool_failed")
    client = client_for(op)

    page = client.get("/inbox/").content.decode()
    assert (count(page, "count-claimed-all"), count(page, "count-claimed-mine"),
            count(page, "count-claimed-unclaimed")) == (4, 1, 2)
    assert "low confidence (2)" in page and "approval required (1)" in page

    assert row_ids(client.get("/inbox/?claimed=mine").content.decode()) == [mine.pk]
    unclaimed = client.get("/inbox/?claimed=unclaimed").content.decode()
    assert theirs.pk not in row_ids(unclaimed) and free.pk in row_ids(unclaimed)
    filtered = client.get("/inbox/?reason=low_confidence").content.decode()
    assert sorted(row_ids(filtered)) == sorted([theirs.pk, free.pk])
    # a facet's counts ignore its own choice but honour the others
    assert count(filtered, "count-claimed-unclaimed") == 1
    assert "approval required (1)" in filtered
    assert row_ids(client.get("/inbox/?q=headphones").content.decode()) == [mine.pk]  # task
    assert row_ids(client.get("/inbox/?q=WHICH+ORDER").content.decode()) == [theirs.pk]
    assert row_ids(client.get("/inbox/?agent=support-refunds&team=demo&q=parcel")
                   .content.decode()) == [free.pk]
    assert row_ids(client.get("/inbox/?team=other").content.decode()) == []
    assert client.get("/inbox/?claimed=bogus&page=x&reason=%3Cb%3E").status_code == 200


def test_a_stale_claim_counts_as_unclaimed(demo, settings):
    settings.CLAIM_TIMEOUT_SECONDS = 60
    stale = escalation(demo["team"], claimed_by=demo["admin"], claimed_ago=120)
    page = client_for(demo["operator"]).get("/inbox/?claimed=unclaimed").content.decode()
    assert row_ids(page) == [stale.pk] and "stale" in page and "Take over" in page


def test_pages_of_fifty_with_htmx_partials(demo):
    many_escalations(demo["team"], 120)
    client = client_for(demo["operator"])
    first = client.get("/inbox/").content.decode()
    assert len(row_ids(first)) == 50 and "Page 1 of 3" in first
    last = client.get("/inbox/?page=3", headers=HX)
    html = last.content.decode()
    assert len(row_ids(html)) == 20 and "<html" not in html and 'id="inbox-results"' in html
    assert len(row_ids(client.get("/inbox/?page=99").content.decode())) == 20  # clamped
    every = set()
    for n in (1, 2, 3):
        every |= set(row_ids(client.get(f"/inbox/?page={n}").content.decode()))
    assert len(every) == 120  # pages neither overlap nor skip


def test_ten_thousand_open_escalations_take_a_fixed_number_of_queries(demo):
    many_escalations(demo["team"], 10_000)
    escalation(demo["team"], claimed_by=demo["admin"])
    client = client_for(demo["operator"])
    client.get("/inbox/")  # warm up the session and the user
    with CaptureQueriesContext(connection) as queries:
        resp = client.get("/inbox/?page=7&reason=low_confidence")
    assert resp.status_code == 200 and len(row_ids(resp.content.decode())) == 50
    assert len(queries) <= 8, [q["sql"][:120] for q in queries]
    total, _ = selectors.inbox_counts(demo["operator"], selectors.InboxFilters())
    assert (total.n, total.more, str(total)) == (1001, True, "1,000+")  # counted to the cap
    deep, _ = selectors.inbox_counts(demo["operator"], selectors.InboxFilters(), page=201)
    assert (deep.n, deep.more) == (10_001, False)  # a deep page counts past its own rows


def inbox_queries(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        resp = client.get(url)
    assert resp.status_code == 200
    return [q["sql"] for q in queries]


def test_the_inbox_reads_as_much_with_thousands_open_as_with_ten(demo):
    """The same queries whatever the number of open escalations, and none of them reads
    every open row: the counts stop at a LIMIT, the page comes off the triage index; the
    runs' checkpoints are not fetched for a list that shows their task."""
    team = demo["team"]
    many_escalations(team, 10)
    client = client_for(demo["operator"])
    client.get("/inbox/")  # warm up the session and the user
    urls = ["/inbox/", "/inbox/?reason=low_confidence&claimed=unclaimed&page=2",
            "/inbox/?team=demo&agent=support-refunds&claimed=mine"]
    few = [inbox_queries(client, url) for url in urls]
    many_escalations(team, 2_500)
    many = [inbox_queries(client, url) for url in urls]
    assert [len(q) for q in many] == [len(q) for q in few]
    assert len(many[0]) <= 8
    for sql in (q for page in many for q in page if '"runs_escalation"' in q):
        assert "LIMIT" in sql.upper(), sql[:200]
        assert '"runs_run"."state"' not in sql, sql[:200]


def _row(html: str, esc_id: int) -> str:
    """One row's markup, its form's CSRF token masked (a fresh mask each response)."""
    found = re.search(rf'<article class="esc-row[^"]*" id="esc-{esc_id}".*?</article>', html,
                      re.S)
    assert found, f"no row for #{esc_id}"
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "csrf", found.group(0))


def test_a_row_reads_the_same_on_the_page_and_in_a_claims_answer(demo):
    """``runs.templatetags.inbox.rows_html`` renders both: the row a claim answers with is
    the row the next page shows, filters carried into its links; a lost claim says why."""
    esc = escalation(demo["team"], reason="low_confidence", question='Is "1042" <b>ok</b>?')
    op, other = client_for(demo["operator"]), client_for(demo["admin"])
    qs = "reason=low_confidence"
    claimed = op.post(f"/escalations/{esc.pk}/claim/", {"fragment": "row", "qs": qs},
                      headers=HX)
    row = _row(claimed.content.decode(), esc.pk)
    assert row == _row(op.get(f"/inbox/?{qs}").content.decode(), esc.pk)
    assert f'href="/escalations/{esc.pk}/?{qs}"' in row and "You hold it" in row
    assert "Is &#34;1042&#34; &lt;b&gt;ok&lt;/b&gt;?" in row  # escaped, as every value
    assert f'action="/escalations/{esc.pk}/release/"' in row

    lost = other.post(f"/escalations/{esc.pk}/claim/", {"fragment": "row", "qs": ""},
                      headers=HX)
    theirs = lost.content.decode()
    assert lost.status_code == 409 and 'data-claim="theirs"' in theirs
    assert 'role="alert" data-testid="claim-error">Claimed by operator' in theirs
    assert "<form" not in theirs  # nothing to press on someone else's claim


def test_a_row_without_a_task_message_shows_no_task(demo):
    """Runs submitted with other input keys (an agent's own schema) list without a task line;
    a variable the row lacks would fail the page, not print blank (StrictUndefined)."""
    esc = escalation(demo["team"])
    esc.run.input = {"order_id": "1042"}
    esc.run.save(update_fields=["input"])
    page = client_for(demo["operator"]).get("/inbox/").content.decode()
    row = _row(page, esc.pk)
    assert "esc-task" not in row and "Approve this?" in row


def test_counts_past_the_cap_say_so_and_every_page_is_still_reachable(demo):
    team, op = demo["team"], demo["operator"]
    many_escalations(team, 1_100)  # 275 of each of four reasons, none claimed
    rare = escalation(team, reason="tool_outcome_unknown")
    mine = escalation(team, reason="low_confidence", claimed_by=op)
    client = client_for(op)
    html = client.get("/inbox/").content.decode()
    assert re.search(r'data-testid="inbox-total"[^>]*>1,000\+<', html)
    assert "Page 1 of 20+ · 1,000+ in all" in html
    assert re.search(r'data-testid="count-claimed-all">1,000\+<', html)
    assert count(html, "count-claimed-mine") == 1
    assert re.search(r'data-testid="count-claimed-unclaimed">100\+<', html)
    assert "approval required (100+)" in html and "tool outcome unknown (1)" in html
    assert "Demo team (1,000+)</option>" in html
    # under the cap the numbers are exact again
    filtered = client.get("/inbox/?reason=tool_outcome_unknown").content.decode()
    assert row_ids(filtered) == [rare.pk] and count(filtered, "count-claimed-all") == 1
    assert "low confidence (100+)" in filtered  # a facet ignores its own choice
    assert row_ids(client.get("/inbox/?claimed=mine").content.decode()) == [mine.pk]
    # past the cap: a page knows whether one follows it, and the last one is exact
    past = client.get("/inbox/?page=21").content.decode()
    assert len(row_ids(past)) == 50 and "Page 21 of 21+ · 1,050+ in all" in past
    assert 'data-testid="page-next"' in past
    last = client.get("/inbox/?page=99").content.decode()  # clamped to the last page
    assert len(row_ids(last)) == 2 and "Page 23 of 23 · 1102 in all" in last
    assert 'data-testid="page-next"' not in last
    every: set[int] = set()
    for n in range(1, 24):
        every |= set(row_ids(client.get(f"/inbox/?page={n}", headers=HX).content.decode()))
    assert len(every) == 1102  # pages neither overlap nor skip, across the cap


def test_a_search_counts_its_matches(demo):
    team = demo["team"]
    many_escalations(team, 1_100)
    client = client_for(demo["operator"])
    # "Bulk question 1…": 1, 10–19, 100–199, 1000–1099
    html = client.get("/inbox/?q=Bulk+question+1").content.decode()
    assert count(html, "inbox-total") == 211 and len(row_ids(html)) == 50
    assert re.search(r'data-testid="count-claimed-all">100\+<', html)  # an option's cap
    assert "Page 1 of 5 · 211 in all" in html
    none = client.get("/inbox/?q=no+such+thing").content.decode()
    assert row_ids(none) == [] and 'data-testid="inbox-empty"' in none


def test_a_user_in_several_teams_gets_each_teams_count(demo):
    team, other = demo["team"], demo["other_team"]
    Membership.objects.create(user=demo["operator"], team=other, role="operator")
    Agent.objects.create(team=other, slug="support-refunds", name="Their refunds",
                         policy=Policy.objects.create(team=other, name="theirs"))
    ours = [escalation(team, reason="low_confidence") for _ in range(2)]
    theirs = escalation(other, reason="approval_required")
    html = client_for(demo["operator"]).get("/inbox/").content.decode()
    assert sorted(row_ids(html)) == sorted([e.pk for e in ours] + [theirs.pk])
    assert count(html, "count-claimed-all") == 3
    assert "Other team (1)</option>" in html and "Demo team (2)</option>" in html
    assert "support-refunds (3)</option>" in html  # one slug, both teams' agents
    only = client_for(demo["operator"]).get("/inbox/?team=other").content.decode()
    assert row_ids(only) == [theirs.pk] and count(only, "count-claimed-all") == 1


def test_escalation_page_links_to_its_neighbours_in_inbox_order(demo):
    team = demo["team"]
    a = escalation(team, reason="approval_required", deadline_in=60)
    b = escalation(team, reason="approval_required", deadline_in=None)
    c = escalation(team, reason="low_confidence", deadline_in=10)
    client = client_for(demo["operator"])
    html = client.get(f"/escalations/{b.pk}/").content.decode()
    assert f'href="/escalations/{a.pk}/" data-key="k"' in html
    assert f'href="/escalations/{c.pk}/" data-key="j"' in html
    filtered = client.get(f"/escalations/{c.pk}/?reason=low_confidence").content.decode()
    assert 'data-testid="esc-prev"' not in filtered and 'data-testid="esc-next"' not in filtered
    first = client.get(f"/escalations/{a.pk}/").content.decode()
    assert 'data-testid="esc-prev"' not in first and f"/escalations/{b.pk}/" in first


@pytest.mark.usefixtures("data_dir")
def test_claims_and_decisions_signal_every_inbox_of_the_team_only(demo):
    esc = escalation(demo["team"])
    mine = connect("/ws/inbox/", demo["admin"])
    theirs = connect("/ws/inbox/", demo["outsider"])
    run_socket = connect(f"/ws/runs/{esc.run_id}/", demo["admin"])

    async def scenario():
        await bind_here()
        for comm in (mine, theirs, run_socket):
            assert (await comm.connect())[0]
        await database_sync_to_async(claims.claim)(escalation_id=esc.pk, user=demo["operator"])
        signal = await receive_until(mine, 'id="inbox-signal"')
        assert 'data-kind="escalation.claimed"' in signal
        claim_sync = await receive_until(run_socket, 'id="claim-sync"')
        assert f'hx-get="/escalations/{esc.pk}/claim/"' in claim_sync
        assert await theirs.receive_nothing(timeout=0.5)
        for comm in (mine, theirs, run_socket):
            await comm.disconnect()

    async_to_sync(scenario)()
    assert Escalation.objects.get(pk=esc.pk).claimed_by == demo["operator"]
