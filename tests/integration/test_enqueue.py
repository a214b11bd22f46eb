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

NO_RUN = 10**12  # an id no run has: a worker that takes the message finds nothing to do


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
        enqueue.advance_run(NO_RUN)
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
    """A test worker may consume the queue meanwhile: the LPUSHes are counted as sent."""
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    built, pushed = [], []
    init, lpush = redis.Redis.__init__, redis.Redis.lpush

    def counting_init(self, *args, **kwargs):
        built.append(1)
        init(self, *args, **kwargs)

    def counting_lpush(self, name, *values):
        pushed.append(name)
        return lpush(self, name, *values)

    enqueue.advance_run(NO_RUN)  # the pooled producer's channel builds its one client here
    monkeypatch.setattr(redis.Redis, "__init__", counting_init)
    monkeypatch.setattr(redis.Redis, "lpush", counting_lpush)
    for offset in range(1, 6):
        in_new_thread(lambda offset=offset: enqueue.advance_run(NO_RUN + offset))
    assert built == []
    assert pushed == [queue] * 5  # every message sent, each by one command
    with app.producer_or_acquire() as producer:
        assert isinstance(producer.channel, broker.Channel)
