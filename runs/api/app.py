"""The NinjaAPI instance: ``/api/v1/`` with its OpenAPI document and offline docs.

``"ninja"`` is in INSTALLED_APPS, so the docs page loads Swagger UI from ninja's own
static files (served by WhiteNoise), never from a CDN.
"""

from __future__ import annotations

from ninja import NinjaAPI

from . import errors
from .endpoints import router

DESCRIPTION = """Submit runs, follow them, cancel them and decide their escalations.

Authenticate with `Authorization: Bearer <key>` (`python manage.py create_api_key --team
SLUG`). Scopes: `submit` (POST /runs, cancel), `read` (GETs), `resolve` (resolve). Errors
are JSON `{"error": {"code", "message", "fields"?}}`. Lists are newest first; pass
`next_cursor` back as `cursor` for the next page (null at the end).
"""

api = NinjaAPI(
    title="AgentDesk API", version="1.0.0", description=DESCRIPTION,
    urls_namespace="api-v1", docs_url="/docs", openapi_url="/openapi.json",
)
errors.install(api)
api.add_router("/", router)
