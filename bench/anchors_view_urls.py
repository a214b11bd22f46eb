"""The app's URLs, plus the anchor: a minimal Django view (``bench.anchors_view``)."""

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from agentdesk.urls import urlpatterns as app_urlpatterns

from .anchors_view import PATH


@csrf_exempt
def minimal(request: HttpRequest) -> JsonResponse:
    """Nothing but a response: what any request to this deployment costs at least."""
    return JsonResponse({"ok": True})


urlpatterns = [path(PATH.lstrip("/"), minimal), *app_urlpatterns]
