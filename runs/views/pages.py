"""Pages outside the console's areas: starting a task, and the health check."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .. import health, selectors, services
from ..forms import NewRunForm


@login_required
@require_http_methods(["GET", "POST"])
def run_new(request: HttpRequest) -> HttpResponse:
    agents = selectors.agents_for(request.user)
    form = NewRunForm(request.POST or None, agents=agents)
    if request.method == "POST" and form.is_valid():
        agent = form.cleaned_data["agent"]
        try:
            run = services.submit_run(
                team=agent.team, agent_slug=agent.slug,
                task_input={"message": form.cleaned_data["message"]}, user_id=request.user.pk,
            )
        except services.ServiceError as exc:
            form.add_error(None, exc.message)
            for field, errors in exc.fields.items():
                for err in errors:
                    form.add_error(None, f"{field}: {err}")
        else:
            return redirect("run_detail", run_id=run.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "runs/run_new.html", {"form": form}, status=status)


def healthz(request: HttpRequest) -> JsonResponse:
    checks = health.check_all()
    ok = all(c["ok"] for c in checks.values())
    return JsonResponse({"ok": ok, "checks": checks}, status=200 if ok else 503)
