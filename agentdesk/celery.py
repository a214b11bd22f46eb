"""The Celery app: ``celery -A agentdesk worker`` in production."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_ready

from .heap import freeze_startup_heap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentdesk.settings")

app = Celery("agentdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _freeze_startup_heap(**_: object) -> None:
    """Sent by ``celery worker`` once it consumes: what it loaded is kept for good, so full
    collections skip it (``agentdesk.heap``) instead of pausing every step in flight."""
    freeze_startup_heap()
