"""The per-process publisher loop: events leave in commit order, a failure stops nothing,
and with Redis they reach a real channel-layer consumer without a loop per event."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from runs import events, publisher


class RecordingLayer:
    """A channel layer that records sends; ``fail_on`` raises for one group."""

    def __init__(self, fail_on: str = "", gate: threading.Event | None = None) -> None:
        self.sent: list[tuple[str, str]] = []
        self.fail_on = fail_on
        self.gate = gate
        self.threads: set[str] = set()

    async def group_send(self, group: str, message: dict[str, str]) -> None:
        self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.gate.wait)
        if group == self.fail_on:
            raise ConnectionError("redis went away")
        self.sent.append((group, message["html"]))


def test_events_are_sent_in_order_on_one_thread_and_a_failure_stops_nothing():
    layer = RecordingLayer(fail_on="broken")
    pub = publisher.Publisher(layer)
    for i in range(100):
        pub.submit("broken" if i == 10 else "run.1", {"type": "live.event", "html": str(i)})
    assert pub.flush(5)
    assert [html for _, html in layer.sent] == [str(i) for i in range(100) if i != 10]
    assert layer.threads == {"live-publisher"}


def test_submit_does_not_wait_for_the_send_and_a_full_queue_drops(monkeypatch, caplog):
    gate = threading.Event()
    monkeypatch.setattr(publisher, "MAX_QUEUED", 3)
    layer = RecordingLayer(gate=gate)
    pub = publisher.Publisher(layer)
    for i in range(10):  # the first send blocks on the gate; submit returns regardless
        pub.submit("run.1", {"type": "live.event", "html": str(i)})
    assert not pub.flush(0.3)  # still waiting on the gate
    gate.set()
    assert pub.flush(5)
    sent = [html for _, html in layer.sent]
    assert sent[0] == "0" and len(sent) < 10 and sent == sorted(sent, key=int)
    assert "publisher queue full" in caplog.text


def test_a_forked_or_new_layer_gets_its_own_publisher():
    first = publisher.publisher_for(RecordingLayer())
    assert publisher.publisher_for(first.layer) is first
    assert publisher.publisher_for(RecordingLayer()) is not first


@pytest.mark.skipif(not settings.REDIS_URL, reason="REDIS_URL is not set")
def test_published_events_reach_a_redis_group_member_in_order():
    layer = get_channel_layer()
    group = f"test.publisher.{uuid.uuid4().hex}"
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    events.bind_loop(None)
    for i in range(20):  # what a worker thread does after each commit
        events.publish(events.LiveEvent(group=group, kind="run.progress", html=f"<p>{i}</p>"))
    assert publisher.flush(5)

    async def receive_all() -> list[str]:
        return [(await asyncio.wait_for(layer.receive(channel), 5))["html"] for _ in range(20)]

    assert async_to_sync(receive_all)() == [f"<p>{i}</p>" for i in range(20)]
    async_to_sync(layer.group_discard)(group, channel)
