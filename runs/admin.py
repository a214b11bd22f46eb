"""Admin: teams, policies, models and keys are editable; run history is read-only.

Agents, MCP servers and HTTP tools are in ``agent_admin``; knowledge documents in
``knowledge_admin``; notification targets and deliveries in ``notification_admin``; the
audited and read-only bases in ``admin_base``."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.utils.html import format_html

from agentdesk.runtime.llm import ModelError
from agentdesk.runtime.options import RuleAction
from agentdesk.runtime.rules import render_answer

from . import (  # agent_admin and knowledge_admin register their pages when imported
    agent_admin,  # noqa: F401
    api_keys,
    callback_urls,
    knowledge_admin,  # noqa: F401
    notification_admin,  # noqa: F401
    probe,
    webhooks,
)
from .admin_base import AuditedAdmin, ReadOnlyAdmin
from .models import (
    ApiKey,
    Escalation,
    Membership,
    ModelProfile,
    Policy,
    Rule,
    Run,
    Step,
    Team,
    TeamDailySpend,
    ToolCall,
    WebhookDelivery,
)
from .models.policies import agents_of, answer_placeholders

# The input an answer rule's preview is rendered with (other placeholders show their name).
SAMPLE_INPUT = {"message": "Where is my order 1077?"}


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


class TeamForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["slug", "name", "daily_budget_usd", "max_running_runs", "callback_url",
                  "auto_assign", "auto_assign_active_minutes"]

    def clean_callback_url(self) -> str:
        """The team's default webhook gets the same check as a run's (``callback_urls``)."""
        url = self.cleaned_data.get("callback_url") or ""
        if url:
            try:
                callback_urls.check(url)
            except callback_urls.RefusedURL as exc:
                raise forms.ValidationError(str(exc)) from None
        return url


@admin.register(Team)
class TeamAdmin(AuditedAdmin):
    """A team's webhook secret is generated with it and shown in full once, in a message
    (like an API key); afterwards only masked. "Rotate webhook secret" makes a new one,
    shown once too, while the old one keeps signing for the grace period (``webhooks``)."""

    form = TeamForm
    list_display = ("slug", "name", "daily_budget_usd", "max_running_runs",
                    "webhook_secret_masked")
    readonly_fields = ("webhook_secret_masked", "webhook_secret_rotation")
    inlines = [MembershipInline]
    actions = ["rotate_webhook_secret"]

    @admin.display(description="Webhook secret")
    def webhook_secret_masked(self, obj: Team | None) -> str:
        return webhooks.masked(obj.webhook_secret) if obj and obj.pk else "(made on save)"

    @admin.display(description="Last rotation")
    def webhook_secret_rotation(self, obj: Team | None) -> str:
        if obj is None or obj.webhook_secret_rotated_at is None:
            return "—"
        until = webhooks.signing_secrets(obj)
        still = " (the previous secret still signs too)" if len(until) > 1 else ""
        return f"{obj.webhook_secret_rotated_at:%Y-%m-%d %H:%M} UTC{still}"

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            messages.warning(request, f"Webhook secret for {obj}: {obj.webhook_secret} — copy "
                                      "it now, it is not shown again in full.")

    @admin.action(description="Rotate webhook secret", permissions=["change"])
    def rotate_webhook_secret(self, request, queryset) -> None:
        grace = settings.WEBHOOK_SECRET_GRACE_SECONDS
        for team in queryset:
            secret = webhooks.rotate_secret(team.pk, actor=request.user)
            messages.warning(request, f"New webhook secret for {team}: {secret} — copy it now, "
                                      "it is not shown again in full. The previous one still "
                                      f"signs for {grace // 3600} h {grace % 3600 // 60} min.")


class RuleInline(admin.StackedInline):
    """Deterministic rules run before any model; they belong to a policy."""

    model = Rule
    extra = 0
    fields = ("name", "priority", "enabled", "conditions", "action", "answer", "answer_preview",
              "tool", "tool_args", "question")
    readonly_fields = ("answer_preview",)

    @admin.display(description="Answer preview")
    def answer_preview(self, obj: Rule | None) -> str:
        """The saved template rendered as a customer would read it, for a sample input."""
        if obj is None or obj.pk is None or obj.action != RuleAction.ANSWER:
            return "—"
        names = answer_placeholders(agents_of(obj.policy_id))
        sample = {name: SAMPLE_INPUT.get(name, f"<{name}>") for name in names}
        return format_html(
            '<div class="help">For the input <code>{}</code>:</div>'
            '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
            json.dumps(sample, ensure_ascii=False), render_answer(obj.answer, sample))


@admin.register(Policy)
class PolicyAdmin(AuditedAdmin):
    """A team's policy and its rules: its team admins edit them (``TeamScopedAdmin``)."""

    inlines = [RuleInline]
    list_filter = ("team",)
    list_display = ("name", "team", "max_steps", "max_tokens", "max_cost_usd",
                    "confidence_threshold", "approval_amount_usd", "small_model", "large_model",
                    "updated_at")
    fieldsets = [
        (None, {"fields": ["team", "name"]}),
        ("Limits", {"fields": ["max_steps", "max_seconds", "max_tokens", "max_cost_usd",
                               "max_output_tokens"]}),
        ("Humans in the loop", {"fields": ["confidence_threshold", "approval_amount_usd",
                                           "approval_tools", "human_timeout_seconds",
                                           "human_timeout_action", "fallback_answer"]}),
        ("Bounds and loops", {"fields": ["on_bound", "loop_repeat_limit", "no_progress_limit"]}),
        ("Models", {"fields": ["small_model", "large_model", "downgrade_after",
                               "cache_ttl_seconds"]}),
    ]


@admin.register(ModelProfile)
class ModelProfileAdmin(admin.ModelAdmin):
    """The model catalogue: prices, limits and what the endpoint accepts."""

    list_display = ("name", "input_per_mtok", "cached_input_per_mtok", "output_per_mtok",
                    "context_window", "tool_calling", "structured_output", "reasoning",
                    "probed_at")
    readonly_fields = ("probed_at", "probe_report")
    fieldsets = (
        (None, {"fields": ("name",)}),
        ("Prices (USD per million tokens; empty = cannot spend)",
         {"fields": ("input_per_mtok", "cached_input_per_mtok", "output_per_mtok")}),
        ("Limits", {"fields": ("context_window", "max_output_tokens", "tokenizer")}),
        ("Capabilities", {"fields": ("tool_calling", "structured_output", "reasoning",
                                     "reasoning_effort", "logprobs")}),
        ("Last probe (manage.py probe_model NAME)", {"fields": ("probed_at", "probe_report")}),
    )
    actions = ["probe_selected"]

    @admin.action(description="Probe selected models", permissions=["change"])
    def probe_selected(self, request, queryset) -> None:
        """Ask the configured endpoint what each model accepts and save it (as
        ``manage.py probe_model NAME`` does), one message per model."""
        for row in queryset:
            try:
                outcome = probe.probe_model(row.name)
            except ModelError as exc:
                self.message_user(request, f"{row.name}: not probed: {exc}", messages.ERROR)
                continue
            level = messages.SUCCESS if outcome.usage_reported else messages.WARNING
            self.message_user(request, outcome.summary(), level)


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    fields = ("index", "kind", "name", "tier", "model", "tokens_in", "tokens_out", "cost_usd",
              "latency_ms", "confidence", "error")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ("id", "team", "agent", "status", "reason", "step_count", "cost_usd",
                    "created_at")
    list_filter = ("status", "reason", "team", "agent")
    search_fields = ("id",)
    inlines = [StepInline]


@admin.register(Step)
class StepAdmin(ReadOnlyAdmin):
    list_display = ("run", "index", "kind", "name", "model", "tokens_in", "tokens_out",
                    "cost_usd", "latency_ms")
    list_filter = ("kind",)


@admin.register(Escalation)
class EscalationAdmin(ReadOnlyAdmin):
    list_display = ("id", "team", "run", "reason", "status", "decision", "decided_by",
                    "created_at", "decided_at")
    list_filter = ("status", "reason", "team")


@admin.register(ToolCall)
class ToolCallAdmin(ReadOnlyAdmin):
    list_display = ("idempotency_key", "tool", "status", "started_at", "finished_at")
    list_filter = ("tool", "status")


@admin.register(TeamDailySpend)
class TeamDailySpendAdmin(ReadOnlyAdmin):
    list_display = ("team", "day", "spent_usd", "reserved_usd", "extra_usd")
    list_filter = ("team",)


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=ApiKey.Scope.choices,
                                       widget=forms.CheckboxSelectMultiple,
                                       initial=list(api_keys.ALL_SCOPES))

    class Meta:
        model = ApiKey
        fields = ("team", "name", "scopes", "rate_limit_per_minute")


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdmin):
    """Keys are created here (the key is shown once, in a message) and revoked, never
    edited: only the hash is stored. Creating and revoking are audited by ``api_keys``;
    a delete by ``AuditedAdmin``."""

    list_display = ("name", "team", "prefix", "scopes", "rate_limit_per_minute",
                    "created_at", "last_used_at", "revoked_at")
    list_filter = ("team",)
    search_fields = ("name", "prefix")
    actions = ["revoke"]
    form = ApiKeyForm
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("team", "name", "scopes", "rate_limit_per_minute")
        return ("team", "name", "prefix", "scopes", "rate_limit_per_minute", "created_at",
                "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("team", "name", "prefix", "scopes", "rate_limit_per_minute", "created_at",
                "last_used_at", "revoked_at")

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return
        new = api_keys.create_api_key(
            team=form.cleaned_data["team"], name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            rate_limit_per_minute=form.cleaned_data["rate_limit_per_minute"],
            actor_id=request.user.pk,
        )
        obj.pk = new.key.pk
        obj.refresh_from_db()
        messages.warning(request, f"New API key for {new.key.team}: {new.raw} — copy it "
                                  "now, it is not shown again.")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset) -> None:
        done = sum(api_keys.revoke_api_key(k.pk, actor_id=request.user.pk) for k in queryset)
        messages.success(request, f"Revoked {done} key(s).")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "run", "event", "url", "status", "attempts", "last_status_code",
                    "next_attempt_at", "delivered_at", "created_at")
    list_filter = ("status", "event")
    search_fields = ("url", "run__id")
    actions = ["send_again"]

    @admin.action(description="Send selected deliveries again")
    def send_again(self, request, queryset) -> None:
        count = webhooks.resend(list(queryset.values_list("pk", flat=True)))
        messages.success(request, f"{count} delivery(ies) queued again.")
