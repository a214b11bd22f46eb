"""Long-lived processes freeze what they loaded at startup (``agentdesk.heap``), so a full
garbage collection under load walks only what requests and steps allocated since."""

from __future__ import annotations

import subprocess
import sys

from tests.stack import ROOT

FROZEN = "import gc; print(gc.get_freeze_count())"


def frozen_after(code: str) -> int:
    out = subprocess.run([sys.executable, "-c", f"{code}\n{FROZEN}"], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=120)
    return int(out.stdout.strip().splitlines()[-1])


def test_the_production_web_server_freezes_its_startup_heap(settings):
    """Not the embedded default (`make run`: one process for everything, nothing measured
    there needs it)."""
    assert frozen_after("import django") == 0  # nothing freezes on its own
    frozen = frozen_after("import agentdesk.asgi")
    assert frozen > 50_000 if not settings.EMBEDDED else frozen == 0


def test_a_celery_worker_freezes_once_it_consumes():
    assert frozen_after("import django; django.setup(); import agentdesk.celery") == 0
    assert frozen_after("import django; django.setup(); from agentdesk.celery import app\n"
                        "from celery.signals import worker_ready\n"
                        "worker_ready.send(sender=None)") > 50_000
