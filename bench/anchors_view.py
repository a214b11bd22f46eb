"""Anchor: a minimal Django view behind the same server command as the API.

``bench.api_submit`` starts the web server exactly as it measures the API — on Postgres +
Redis ``uvicorn agentdesk.asgi:application --workers N``, on the embedded default
``manage.py run_embedded`` — with ``DJANGO_SETTINGS_MODULE=bench.anchors_view_settings``:
the app's settings (its middleware, database, cache) whose URLs add one view at ``PATH``, a
synchronous function (as the API's endpoints are) that returns ``{"ok": true}``. The same
load generator (``bench.loadgen``, same concurrency, connections and request body) then
alternates between that view and ``POST /api/v1/runs`` on the same server processes, a
block of each per round, so the machine's load weighs on both alike.
``api_submit_vs_floor`` = submissions/s ÷ the minimal view's requests/s.
"""

from __future__ import annotations

from tests.stack import Stack

PATH = "/bench/minimal"
SETTINGS = "bench.anchors_view_settings"
URLCONF = "bench.anchors_view_urls"  # the settings' ROOT_URLCONF, for an in-process client


class AnchoredStack(Stack):
    """``tests.stack.Stack`` whose processes load the settings with the anchor view."""

    def _environment(self) -> dict[str, str]:
        env = super()._environment()
        env["DJANGO_SETTINGS_MODULE"] = SETTINGS
        return env
