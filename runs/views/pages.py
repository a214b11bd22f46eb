"""Pages outside the console's areas: starting a task, and the health check."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .. import health, selectors, services
from ..errors import AppError
from ..forms import NewRunForm
from ..permissions import Action
from .access import require_somewhere


@login_required
@require_http_methods(["GET", "POST"])
def run_new(request: HttpRequest) -> HttpResponse:
    require_somewhere(request.user, Action.SUBMIT)  # a viewer watches, never starts runs
    agents = selectors.agents_to_submit(request.user)
    form = NewRunForm(request.POST or None, agents=agents)
    status = 400 if request.method == "POST" else 200  # a POST that gets here was refused
    if request.method == "POST" and form.is_valid():
        agent = form.cleaned_data["agent"]
        try:
            run = services.submit_run(
                team=agent.team, agent_slug=agent.slug,
                task_input={"message": form.cleaned_data["message"]}, user_id=request.user.pk,
            )
        except AppError as exc:
            status = exc.status
            show_on_form(form, exc)
        else:
            return redirect("run_detail", run_id=run.pk)
    return render(request, "runs/run_new.html", {"form": form}, status=status)


def show_on_form(form: NewRunForm, exc: AppError) -> None:
    """The refusal at the top, each field error next to its input (``input.message`` is
    the form's ``message``)."""
    form.add_error(None, exc.message)
    for name, errors in exc.fields.items():
        field = name.removeprefix("input.")
        for err in errors:
            if field in form.fields:
                form.add_error(field, err)
            else:
                form.add_error(None, f"{name}: {err}")


def healthz(request: HttpRequest) -> JsonResponse:
    checks = health.check_all()
    ok = all(c["ok"] for c in checks.values())
    return JsonResponse({"ok": ok, "checks": checks}, status=200 if ok else 503)
