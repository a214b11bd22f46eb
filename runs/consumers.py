"""Websocket consumers: authenticate on connect, join only the user's groups, push HTML.

A user outside the run's team is refused on connect with the same close code as a missing
run (4404), so a websocket leaks no more than a page does.

Access is checked again before a group message is sent, at most every
``LIVE_RECHECK_SECONDS`` (2 s by default; 0 checks every message): the session is read
afresh (a logout, a password change or a deactivated user counts), then the user's teams
(or the run's visibility). A member removed from a team hears nothing of it once that
interval has passed: the consumer leaves the groups it lost, and closes (4404) when none is
left. A check costs a few indexed queries; doing it on every message of every listener put
those queries in the path of each live update (the bench's escalation latency), so a burst
of messages shares one check.

While connected, a run page's consumer marks its run as watched (``runs.watchers``) on
joining and on a heartbeat: writers render a run's progress only for a run someone watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from importlib import import_module

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import assignment, selectors, watchers
from .events import run_group, team_group

NOT_FOUND = 4404


class LiveConsumer(AsyncWebsocketConsumer):
    groups_joined: list[str]
    checked_at: float = float("-inf")  # when access was last checked (time.monotonic)
    watches: int | None = None  # the run whose page this is (``RunConsumer``)
    heartbeat: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=NOT_FOUND)
            return
        groups = await self.groups_for(user)
        if groups is None:
            await self.close(code=NOT_FOUND)
            return
        self.groups_joined = groups
        self.checked_at = time.monotonic()
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        if self.watches is not None:
            await database_sync_to_async(watchers.mark)(self.watches)
            self.heartbeat = asyncio.create_task(self.keep_watching())
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.heartbeat
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def keep_watching(self) -> None:
        """Renew the run's watch mark while the socket is open and still allowed."""
        while True:
            await asyncio.sleep(watchers.heartbeat_seconds())
            if self.groups_joined and self.watches is not None:
                await database_sync_to_async(watchers.mark)(self.watches)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        """Clients only listen; anything they send is ignored."""

    async def live_event(self, event: dict[str, str]) -> None:
        if time.monotonic() - self.checked_at >= settings.LIVE_RECHECK_SECONDS:
            await self.still_allowed()
            self.checked_at = time.monotonic()
        allowed = set(self.groups_joined)
        group = event.get("group")
        if group in allowed or (group is None and allowed):  # None: a sender of old
            await self.send(text_data=event["html"])

    async def still_allowed(self) -> set[str]:
        """The joined groups the user may still hear, as of now; leaves the others, and
        closes the socket when none is left."""
        user = await self.current_user()
        now = set(await self.groups_for(user) or []) if user.is_authenticated else set()
        kept = [g for g in self.groups_joined if g in now]
        for group in set(self.groups_joined) - set(kept):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = kept
        if not kept:
            await self.close(code=NOT_FOUND)
        return set(kept)

    async def current_user(self):
        """The session's user now, not at connect: the session is read again from its
        store (the scope's copy is cached), then checked as at connect (auth hash)."""
        session = self.scope.get("session")
        store = import_module(settings.SESSION_ENGINE).SessionStore(
            session.session_key if session is not None else None)
        return await get_user({**self.scope, "session": store})

    async def groups_for(self, user) -> list[str] | None:
        raise NotImplementedError


class InboxConsumer(LiveConsumer):
    @database_sync_to_async
    def groups_for(self, user) -> list[str] | None:
        assignment.touch(user)  # an inbox open counts as active (round-robin assignment)
        return [team_group(team_id) for team_id in selectors.team_ids_for(user)]


class RunConsumer(LiveConsumer):
    @database_sync_to_async
    def groups_for(self, user) -> list[str] | None:
        run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if not selectors.can_see_run(user, run_id):
            return None
        self.watches = run_id
        return [run_group(run_id)]
