"""pytest plugin, loaded before Django's settings (``-p`` in pyproject's ``addopts``).

A test run is a deployment of its own, on this machine over plain HTTP:

- it gets a fresh random ``DJANGO_SECRET_KEY`` unless one is set, as production must set
  one: on Postgres + Redis the settings refuse to start without it (``agentdesk.secret_key``);
- ``DJANGO_SECURE=false`` unless set: the production topology is HTTPS-only by default
  (secure cookies, HTTPS redirect), and the test client and browsers speak plain HTTP.

The processes tests start (``tests/stack.py``, ``manage.py`` subprocesses) inherit both.
Tests of these defaults remove them from their subprocess.
"""

from __future__ import annotations

import os
import secrets

os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("DJANGO_SECURE", "false")
