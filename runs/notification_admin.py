"""Admin for notifications: each team's targets (their URLs are secrets: written, never
shown again) and the delivery records (read-only; failed ones can be sent again)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from . import notifier
from .admin_base import AuditedAdmin, ReadOnlyAdmin
from .models import NotificationDelivery, NotificationEvent, NotificationTarget


class NotificationTargetForm(forms.ModelForm):
    """The URL is typed like a password: never rendered back into the page. Left empty when
    changing a target, the saved one is kept."""

    destination = forms.CharField(
        label="URL", required=False, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off",
                                                              "size": 80}),
        help_text=NotificationTarget._meta.get_field("destination").help_text
        + " Leave empty to keep the saved one.")
    events = forms.MultipleChoiceField(
        choices=NotificationEvent.choices, widget=forms.CheckboxSelectMultiple,
        required=False, initial=[e.value for e in NotificationEvent])

    class Meta:
        model = NotificationTarget
        fields = ["team", "name", "destination", "events", "min_priority", "enabled"]

    def clean_destination(self) -> str:
        value = self.cleaned_data.get("destination") or ""
        if not value:
            if self.instance.pk and self.instance.destination:
                return self.instance.destination  # kept as saved
            raise forms.ValidationError("Give the URL to send to.")
        return notifier.validate(value)


@admin.register(NotificationTarget)
class NotificationTargetAdmin(AuditedAdmin):
    """Targets per team; the audit log records a change of URL as "(changed)", never the
    URL (``audit.SECRET_FIELDS``)."""

    form = NotificationTargetForm
    list_display = ("name", "team", "masked_destination", "event_list", "min_priority",
                    "enabled")
    list_filter = ("team", "enabled")
    search_fields = ("name",)
    readonly_fields = ("masked_destination",)

    def get_fields(self, request, obj=None):
        fields = ["team", "name", "destination", "events", "min_priority", "enabled"]
        return fields[:2] + ["masked_destination"] + fields[2:] if obj else fields

    @admin.display(description="URL (saved)")
    def masked_destination(self, obj: NotificationTarget) -> str:
        return notifier.masked(obj.destination) if obj and obj.destination else "—"

    @admin.display(description="events")
    def event_list(self, obj: NotificationTarget) -> str:
        return ", ".join(obj.events or []) or "none"


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyAdmin):
    """Every notification owed to a target, as sent: alone or in a digest (rows sent
    together share a message id), attempts and the last error (scrubbed of secrets)."""

    list_display = ("id", "event", "title", "target", "status", "attempts", "in_digest",
                    "next_attempt_at", "delivered_at", "created_at")
    list_filter = ("status", "event", "in_digest", "team")
    search_fields = ("title", "key", "message_id")
    actions = ["send_again"]

    @admin.action(description="Send selected notifications again")
    def send_again(self, request, queryset) -> None:
        count = notifier.resend(list(queryset.values_list("pk", flat=True)))
        messages.success(request, f"{count} notification(s) queued again.")
