"""Console pages. Each view: permission check, a selector, render — no business logic."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from . import health, selectors, services
from .forms import DecisionForm, NewRunForm


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    escalations = selectors.open_escalations_for(request.user)[:200]
    return render(request, "runs/inbox.html", {"escalations": escalations})


@login_required
def escalation_detail(request: HttpRequest, escalation_id: int) -> HttpResponse:
    esc = selectors.escalation_for(request.user, escalation_id)
    return render(request, "runs/escalation_detail.html", _escalation_context(esc))


@login_required
@require_POST
def escalation_decide(request: HttpRequest, escalation_id: int) -> HttpResponse:
    esc = selectors.escalation_for(request.user, escalation_id)
    form = DecisionForm(request.POST)
    error = ""
    status = 200
    if not form.is_valid():
        error, status = "Choose an action.", 400
    else:
        try:
            services.decide(
                escalation_id=esc.pk, user=request.user,
                decision=form.cleaned_data["action"], message=form.cleaned_data["message"],
            )
        except services.ServiceError as exc:
            error = exc.message
            status = 409 if isinstance(exc, services.AlreadyDecided | services.RunNotWaiting) \
                else 400
    esc.refresh_from_db()
    if request.htmx:
        ctx = {**_escalation_context(esc), "error": error}
        return render(request, "runs/escalation_detail.html#decision-status", ctx,
                      status=status)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Decision recorded: {esc.decision}.")
    return redirect("escalation_detail", escalation_id=esc.pk)


def _escalation_context(esc) -> dict:
    run = esc.run
    return {"esc": esc, "run": run, "steps": selectors.steps_of(run), "form": DecisionForm()}


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    runs = selectors.runs_for(request.user).order_by("-created_at")[:100]
    return render(request, "runs/run_list.html", {"runs": runs})


@login_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = selectors.run_for(request.user, run_id)
    escalations = run.escalations.order_by("created_at").select_related("decided_by")
    return render(
        request, "runs/run_detail.html",
        {"run": run, "steps": selectors.steps_of(run), "escalations": escalations},
    )


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
