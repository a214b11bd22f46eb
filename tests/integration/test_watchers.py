"""Live fragments are rendered only for runs someone watches (issue 16, item 2): a
websocket marks its groups on joining and on a heartbeat; with nobody watching, a step
renders nothing."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.cache import cache

from runs import fragments, watchers
from runs.events import run_group, team_group

from .console_data import no_resume  # noqa: F401 (a fixture)
from .helpers import submit
from .test_live import connect

# runs are only rows here: a worker another test started must not advance them after the test
pytestmark = pytest.mark.usefixtures("no_resume")


@pytest.fixture(autouse=True)
def fresh_marks(settings):
    cache.clear()
    settings.LIVE_WATCH_SECONDS = 1  # marks live 1 s, renewed every 1/3 s


def test_a_run_nobody_watches_renders_nothing(demo, monkeypatch):
    rendered: list[str] = []
    monkeypatch.setattr(fragments, "render_to_string",
                        lambda name, *a, **k: rendered.append(name) or "")
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    assert fragments.run_progress(run, None) == []
    assert rendered == []


def test_a_watched_run_renders_and_the_mark_outlives_its_span_while_connected(demo):
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    page, inbox = connect(f"/ws/runs/{run.pk}/", demo["operator"]), \
        connect("/ws/inbox/", demo["operator"])

    async def scenario():
        assert (await page.connect())[0] and (await inbox.connect())[0]
        await asyncio.sleep(2.2)  # more than twice a mark's life: the heartbeat renews it
        assert await sync_to_async(watchers.watched)(run_group(run.pk))
        assert await sync_to_async(watchers.watched)(team_group(demo["team"].pk))
        events = await sync_to_async(fragments.run_progress)(run, None)
        assert [e.group for e in events] == [run_group(run.pk)]
        assert 'id="run-summary"' in events[0].html
        await page.disconnect()
        await inbox.disconnect()
        await asyncio.sleep(1.3)  # the last listener left: the mark runs out
        assert not await sync_to_async(watchers.watched)(run_group(run.pk))

    async_to_sync(scenario)()


def test_a_refused_socket_marks_nothing(demo):
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    outsider = connect(f"/ws/runs/{run.pk}/", demo["outsider"])

    async def scenario():
        connected, _code = await outsider.connect()
        assert not connected
        assert not await sync_to_async(watchers.watched)(run_group(run.pk))

    async_to_sync(scenario)()
