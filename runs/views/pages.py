"""Console pages. Each view: permission check, a selector, render — no business logic."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from agentdesk.runtime.outcomes import BOUND_REASONS

from .. import health, selectors, services
from ..forms import DecisionForm, NewRunForm


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
    error, fields, status = "", {}, 200
    if not form.is_valid():
        error, status = form.first_error(), 400
        fields = {k: [str(e) for e in v] for k, v in form.errors.items()}
    else:
        try:
            services.decide(escalation_id=esc.pk, user=request.user, **form.decision_kwargs())
        except services.ServiceError as exc:
            error, fields = exc.message, exc.fields
            conflict = isinstance(exc, services.AlreadyDecided | services.RunNotWaiting)
            status = 409 if conflict else 400
    esc.refresh_from_db()
    if request.htmx:
        ctx = {**_escalation_context(esc), "error": error, "field_errors": fields}
        return render(request, "runs/escalation_detail.html#decision-status", ctx,
                      status=status)
    if error:
        details = "; ".join(f"{k}: {', '.join(v)}" for k, v in fields.items())
        messages.error(request, f"{error} {details}".strip())
    else:
        messages.success(request, f"Decision recorded: {esc.decision}.")
    return redirect("escalation_detail", escalation_id=esc.pk)


def _escalation_context(esc) -> dict:
    run = esc.run
    return {
        "esc": esc, "run": run, "steps": selectors.steps_of(run), "form": DecisionForm(),
        "bound_reasons": BOUND_REASONS,
        "editable": bool(esc.proposed_tool) and esc.proposed_tool != "final_answer",
        "args_json": json.dumps(esc.proposed_args, indent=2, sort_keys=True),
    }


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
