"""Live fragments are rendered only for runs someone watches (issue 16, item 2): a run
page's websocket marks its run on joining and on a heartbeat; with nobody watching, a step
renders nothing; a checkpoint reads the mark back in its own statement."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from runs import adapters, enqueue, execution, fragments, watchers
from runs.events import run_group
from runs.models import Run

from .console_data import no_resume  # noqa: F401 (a fixture)
from .helpers import submit
from .test_live import connect

# runs are only rows here: a worker another test started must not advance them after the test
pytestmark = pytest.mark.usefixtures("no_resume")


@pytest.fixture(autouse=True)
def short_marks(settings):
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
        await sync_to_async(run.refresh_from_db)()
        assert watchers.watched(run)
        events = await sync_to_async(fragments.run_progress)(run, None)
        assert [e.group for e in events] == [run_group(run.pk)]
        assert 'id="run-summary"' in events[0].html
        await page.disconnect()
        await inbox.disconnect()
        await asyncio.sleep(1.3)  # the last listener left: the mark runs out
        await sync_to_async(run.refresh_from_db)()
        assert not watchers.watched(run)

    async_to_sync(scenario)()


def test_a_refused_socket_marks_nothing(demo):
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    outsider = connect(f"/ws/runs/{run.pk}/", demo["outsider"])

    async def scenario():
        connected, _code = await outsider.connect()
        assert not connected
        await sync_to_async(run.refresh_from_db)()
        assert not watchers.watched(run)

    async_to_sync(scenario)()


def test_the_inbox_marks_no_run(demo):
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    inbox = connect("/ws/inbox/", demo["operator"])

    async def scenario():
        assert (await inbox.connect())[0]
        await inbox.disconnect()

    async_to_sync(scenario)()
    assert not Run.objects.filter(watched_until__isnull=False).exists()
    assert fragments.run_progress(Run.objects.get(pk=run.pk), None) == []


def test_a_page_opened_mid_slice_gets_the_next_step_read_back_by_its_checkpoint(
        demo, monkeypatch, settings):
    """The worker read the run when its slice began, before anyone watched; the page opens
    after the first step. Each later step's checkpoint reads the mark back in its own
    statement, so those steps are rendered, with no query of its own."""
    settings.LIVE_WATCH_SECONDS = 60
    monkeypatch.setattr(enqueue, "advance_run", lambda *a, **k: None)
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    rendered: list[bool] = []
    progress, commit = fragments.run_progress, adapters.DjangoRunStore.commit

    def spy(run, step):
        events = progress(run, step)
        rendered.append(bool(events))
        return events

    def commit_then_open_page(store, state, step=None, escalation=None):
        commit(store, state, step, escalation)
        watchers.mark(run.pk)  # after the first checkpoint: the worker's row is stale

    monkeypatch.setattr(fragments, "run_progress", spy)
    monkeypatch.setattr(adapters.DjangoRunStore, "commit", commit_then_open_page)
    while execution.advance(run.pk) == execution.MORE_WORK:
        pass
    assert len(rendered) >= 3, rendered
    assert rendered[0] is False and all(rendered[1:]), rendered
