"""The app's own settings with one more URL: the minimal view of ``bench.anchors_view``.

Everything else — middleware, database, cache, channel layer — is the deployment's, so the
anchor view and ``POST /api/v1/runs`` are served by the same server, in the same processes.
"""

from agentdesk.settings import *  # noqa: F403

ROOT_URLCONF = "bench.anchors_view_urls"
