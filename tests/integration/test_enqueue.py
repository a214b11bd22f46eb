"""What a publish costs the process that sends it: the broker's messages, and nothing more.

The web server runs each request in a new thread, so anything Celery or kombu builds per
thread or per message is paid by every submission (``runs.enqueue``, ``agentdesk.broker``).
"""

from __future__ import annotations

import threading

import pytest
import redis
from django.conf import settings

from agentdesk import broker
from agentdesk.celery import app
from runs import enqueue


def in_new_thread(fn) -> None:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def test_a_publish_in_a_new_thread_builds_no_result_backend():
    seen: dict[str, bool] = {}

    def publish() -> None:
        enqueue.advance_run(0)
        seen["backend"] = hasattr(app._local, "backend")

    in_new_thread(publish)
    assert seen == {"backend": False}
    probe: dict[str, bool] = {}  # the check can tell: reading the backend builds one

    def read() -> None:
        app.backend  # noqa: B018 - the read builds the thread's backend
        probe["backend"] = hasattr(app._local, "backend")

    in_new_thread(read)
    assert probe == {"backend": True}


@pytest.mark.skipif(not settings.REDIS_URL, reason="REDIS_URL is not set")
def test_the_redis_channel_sends_every_message_through_one_client(monkeypatch):
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    server = redis.Redis.from_url(settings.REDIS_URL)
    server.delete(queue)
    built = []
    original = redis.Redis.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    enqueue.advance_run(1)  # the pooled producer's channel builds its one client here
    monkeypatch.setattr(redis.Redis, "__init__", counting)
    for run_id in range(2, 7):
        in_new_thread(lambda run_id=run_id: enqueue.advance_run(run_id))
    with app.producer_or_acquire() as producer:
        assert isinstance(producer.channel, broker.Channel)
    try:
        assert built == []
        assert server.llen(queue) == 6  # every message arrived
    finally:
        server.delete(queue)
