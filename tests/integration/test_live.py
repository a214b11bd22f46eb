"""Live updates over real Channels consumers (session auth, team scoping, pushed HTML)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from agentdesk.asgi import application
from runs import events

from .helpers import submit, wait_status

pytestmark = pytest.mark.usefixtures("celery_worker", "data_dir")


def cookie_for(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def connect(path: str, user=None, cookie: bytes | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    cookie = cookie or (cookie_for(user) if user is not None else None)
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, path, headers=headers)


@pytest.fixture(autouse=True)
def unbind_loop():
    yield
    events.bind_loop(None)


async def bind_here() -> None:
    """Worker threads publish onto this test's loop (what the embedded server does)."""
    events.bind_loop(asyncio.get_running_loop())


async def receive_until(comm: WebsocketCommunicator, needle: str, timeout: float = 15) -> str:
    """Messages until one contains ``needle``; everything received is returned."""
    seen = ""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while needle not in seen:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"{needle!r} not received; got {seen[:500]!r}")
        seen += await comm.receive_from(timeout=remaining)
    return seen


def test_inbox_gets_new_escalation_and_other_team_gets_nothing(demo):
    mine, theirs = connect("/ws/inbox/", demo["operator"]), connect("/ws/inbox/", demo["outsider"])

    async def scenario():
        await bind_here()
        assert (await mine.connect())[0]
        assert (await theirs.connect())[0]
        run = await database_sync_to_async(submit)(demo["team"], demo["operator"],
                                                   "I want a refund for order 1042")
        # the inbox is filtered per viewer: the team hears a signal, each inbox re-fetches
        html = await receive_until(mine, 'data-kind="escalation.opened"')
        assert 'id="inbox-signal" hidden hx-swap-oob="true"' in html
        assert await theirs.receive_nothing(timeout=1)
        await mine.disconnect()
        await theirs.disconnect()
        return run

    run = async_to_sync(scenario)()
    wait_status(run, "waiting_human")


def test_run_page_streams_steps_and_final_status(demo):
    cookie = cookie_for(demo["operator"])

    async def scenario():
        await bind_here()
        run = await database_sync_to_async(submit)(demo["team"], demo["operator"],
                                                   "Where is my order 1077?")
        comm = connect(f"/ws/runs/{run.pk}/", cookie=cookie)
        assert (await comm.connect())[0]
        html = await receive_until(comm, "succeeded")
        assert 'id="run-summary"' in html
        await comm.disconnect()
        return run

    run = async_to_sync(scenario)()
    wait_status(run, "succeeded")


def test_other_team_and_anonymous_are_refused_on_run_socket(demo):
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    wait_status(run, "succeeded")

    outsider, operator = cookie_for(demo["outsider"]), cookie_for(demo["operator"])

    async def scenario():
        for cookie in (outsider, None):
            comm = connect(f"/ws/runs/{run.pk}/", cookie=cookie)
            connected, code = await comm.connect()
            assert not connected and code == 4404
        missing = connect("/ws/runs/999999/", cookie=operator)
        connected, code = await missing.connect()
        assert not connected and code == 4404

    async_to_sync(scenario)()


def test_foreign_origin_is_refused(demo):
    cookie = cookie_for(demo["operator"])

    async def scenario():
        comm = WebsocketCommunicator(
            application, "/ws/inbox/",
            headers=[(b"origin", b"http://evil.example"), (b"cookie", cookie)],
        )
        connected, _ = await comm.connect()
        assert not connected

    async_to_sync(scenario)()
