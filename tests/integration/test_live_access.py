"""Websocket access is checked again while connected, not only on connect (issue 15, item
5): a member removed from the team, or logged out, hears nothing once the re-check interval
(``LIVE_RECHECK_SECONDS``) has passed, and the socket closes. Most tests set the interval to
0 (a check before every message) to show exactly what a check does."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.sessions.models import Session

from runs.consumers import NOT_FOUND
from runs.events import LiveEvent, run_group, team_group
from runs.models import Membership, Team

from .helpers import submit, wait_status
from .test_live import connect, cookie_for

pytestmark = pytest.mark.usefixtures("data_dir")


@pytest.fixture(autouse=True)
def check_every_message(request, settings):
    if "interval" not in request.node.name:
        settings.LIVE_RECHECK_SECONDS = 0


async def say(group: str, text: str) -> None:
    await get_channel_layer().group_send(group, LiveEvent(group, "test", text).message())


async def closed_with(comm, code: int) -> bool:
    output = await comm.receive_output(timeout=2)
    return output == {"type": "websocket.close", "code": code}


@pytest.mark.usefixtures("celery_worker")
def test_a_member_removed_from_the_team_stops_hearing_it_at_the_next_message(demo):
    team, operator = demo["team"], demo["operator"]
    # settled first, so the only frames on the run's socket are this test's own
    run = wait_status(submit(team, operator, "Where is my order 1077?"),
                      "succeeded", "failed", "waiting_human")
    inbox, run_page = connect("/ws/inbox/", operator), connect(f"/ws/runs/{run.pk}/", operator)

    async def scenario():
        assert (await inbox.connect())[0] and (await run_page.connect())[0]
        await say(team_group(team.pk), "<p>team news 1</p>")
        await say(run_group(run.pk), "<p>run news 1</p>")
        assert await inbox.receive_from(timeout=5) == "<p>team news 1</p>"
        assert await run_page.receive_from(timeout=5) == "<p>run news 1</p>"

        await database_sync_to_async(
            Membership.objects.filter(user=operator, team=team).delete)()
        await say(team_group(team.pk), "<p>team news 2</p>")
        await say(run_group(run.pk), "<p>run news 2</p>")
        # nothing more is sent: the next frame is the close, not the news
        assert await closed_with(inbox, NOT_FOUND)
        assert await closed_with(run_page, NOT_FOUND)

    async_to_sync(scenario)()


def test_losing_one_team_keeps_the_others(demo):
    operator, team = demo["operator"], demo["team"]
    second = Team.objects.create(slug="second", name="Second")
    Membership.objects.create(user=operator, team=second, role="operator")
    inbox = connect("/ws/inbox/", operator)

    async def scenario():
        assert (await inbox.connect())[0]
        await database_sync_to_async(
            Membership.objects.filter(user=operator, team=team).delete)()
        await say(team_group(team.pk), "<p>old team</p>")
        await say(team_group(second.pk), "<p>still mine</p>")
        assert await inbox.receive_from(timeout=5) == "<p>still mine</p>"
        await say(team_group(team.pk), "<p>old team again</p>")  # left that group
        assert await inbox.receive_nothing(timeout=0.5)
        await inbox.disconnect()

    async_to_sync(scenario)()


def test_a_logged_out_session_stops_hearing_at_the_next_message(demo):
    team, operator = demo["team"], demo["operator"]
    cookie = cookie_for(operator)
    inbox = connect("/ws/inbox/", cookie=cookie)
    session_key = cookie.decode().split("=", 1)[1]

    async def scenario():
        assert (await inbox.connect())[0]
        await database_sync_to_async(Session.objects.filter(session_key=session_key).delete)()
        await say(team_group(team.pk), "<p>after logout</p>")
        assert await closed_with(inbox, NOT_FOUND)

    async_to_sync(scenario)()


def test_within_the_interval_a_burst_shares_one_check_and_after_it_a_removed_member_is_cut_off(
        demo, settings):
    settings.LIVE_RECHECK_SECONDS = 0.5
    team, operator = demo["team"], demo["operator"]
    inbox = connect("/ws/inbox/", operator)

    async def scenario():
        assert (await inbox.connect())[0]
        await database_sync_to_async(
            Membership.objects.filter(user=operator, team=team).delete)()
        await say(team_group(team.pk), "<p>within the interval</p>")  # checked at connect
        assert await inbox.receive_from(timeout=5) == "<p>within the interval</p>"
        await asyncio.sleep(0.6)
        await say(team_group(team.pk), "<p>after it</p>")
        assert await closed_with(inbox, NOT_FOUND)

    async_to_sync(scenario)()
