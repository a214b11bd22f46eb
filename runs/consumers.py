"""Websocket consumers: authenticate on connect, join only the user's groups, push HTML.

A user outside the run's team is refused on connect with the same close code as a missing
run (4404), so a websocket leaks no more than a page does.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from . import selectors
from .events import run_group, team_group

NOT_FOUND = 4404


class LiveConsumer(AsyncWebsocketConsumer):
    groups_joined: list[str]

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
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        """Clients only listen; anything they send is ignored."""

    async def live_event(self, event: dict[str, str]) -> None:
        await self.send(text_data=event["html"])

    async def groups_for(self, user) -> list[str] | None:
        raise NotImplementedError


class InboxConsumer(LiveConsumer):
    @database_sync_to_async
    def groups_for(self, user) -> list[str] | None:
        return [team_group(team_id) for team_id in selectors.team_ids_for(user)]


class RunConsumer(LiveConsumer):
    @database_sync_to_async
    def groups_for(self, user) -> list[str] | None:
        run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if not selectors.can_see_run(user, run_id):
            return None
        return [run_group(run_id)]
