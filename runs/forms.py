"""Forms for the console: submitting a task and deciding an escalation."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from agentdesk.agents.support_refunds.agent import MAX_MESSAGE_CHARS
from agentdesk.runtime.outcomes import Decision, Reason, RunStatus

from .models import Agent
from .selectors import InboxFilters, RunFilters

EDIT_APPROVE = "edit_approve"
BUDGET_FIELDS = ("max_steps", "max_seconds", "max_tokens", "max_cost_usd", "team_budget_usd")


class NewRunForm(forms.Form):
    max_chars = MAX_MESSAGE_CHARS
    agent = forms.ModelChoiceField(queryset=Agent.objects.none(), empty_label=None)
    message = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "What should the agent do?",
                                     "data-max-chars": str(MAX_MESSAGE_CHARS)}),
        strip=True, help_text=f"Up to {MAX_MESSAGE_CHARS:,} characters.",
    )  # no max_length: its ``maxlength`` attribute would let the browser cut a long paste
    #    silently and start a run on a fragment; ``clean_message`` refuses it, keeping it all

    def __init__(self, *args, agents=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if agents is not None:
            self.fields["agent"].queryset = agents
        self.fields["agent"].label_from_instance = lambda a: f"{a.slug} — {a.team.name}"

    def clean_message(self) -> str:
        message = self.cleaned_data["message"]
        if len(message) > self.max_chars:
            raise forms.ValidationError(
                f"The message is {len(message):,} characters long; the limit is "
                f"{self.max_chars:,}. Shorten it and start again: no run was started.",
                code="max_length")
        return message


class DecisionForm(forms.Form):
    """One form for every decision; the button pressed (``action``) says which."""

    action = forms.ChoiceField(
        choices=[(d.value, d.value) for d in Decision] + [(EDIT_APPROVE, "edit & approve")]
    )
    message = forms.CharField(required=False, max_length=4000, strip=True,
                              widget=forms.Textarea(attrs={"rows": 2}))
    args = forms.CharField(required=False, max_length=20_000)
    max_steps = forms.IntegerField(required=False, min_value=1)
    max_seconds = forms.FloatField(required=False, min_value=1)
    max_tokens = forms.IntegerField(required=False, min_value=1)
    max_cost_usd = forms.DecimalField(required=False, min_value=0, decimal_places=4)
    # a team_budget escalation: USD a team admin adds to the team's budget for today
    team_budget_usd = forms.DecimalField(required=False, min_value=0, decimal_places=4,
                                         max_digits=12)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("action") == EDIT_APPROVE:
            try:
                data["parsed_args"] = json.loads(data.get("args") or "")
            except json.JSONDecodeError as exc:
                self.add_error("args", f"Not valid JSON: {exc.msg} (line {exc.lineno}).")
        return data

    def decision_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``services.decide``."""
        data = self.cleaned_data
        action = data["action"]
        kwargs: dict[str, Any] = {"decision": action, "message": data.get("message", "")}
        if action == EDIT_APPROVE:
            kwargs.update(decision=Decision.APPROVE.value, args=data["parsed_args"])
        if action == Decision.EXTEND_BUDGET:
            kwargs["budget"] = {f: data[f] for f in BUDGET_FIELDS if data.get(f) is not None}
        return kwargs

    def first_error(self) -> str:
        for field, errors in self.errors.items():
            label = "" if field == "__all__" else f"{field}: "
            return f"{label}{errors[0]}"
        return "Choose an action."


class InboxFilterForm(forms.Form):
    """The inbox's GET filters. Unknown values are dropped, never an error page."""

    q = forms.CharField(required=False, max_length=200, strip=True,
                        widget=forms.TextInput(attrs={"placeholder": "Search question or task",
                                                      "type": "search"}))
    team = forms.SlugField(required=False)
    agent = forms.SlugField(required=False)
    reason = forms.SlugField(required=False)
    claimed = forms.ChoiceField(required=False, choices=[("all", "All"), ("mine", "Mine"),
                                                         ("unclaimed", "Unclaimed")])
    page = forms.IntegerField(required=False, min_value=1)

    def filters(self):
        self.is_valid()  # keeps the valid fields of a partly invalid query
        data = self.cleaned_data
        return InboxFilters(team=data.get("team") or "", agent=data.get("agent") or "",
                            reason=data.get("reason") or "", claimed=data.get("claimed") or "all",
                            q=data.get("q") or "")

    def page_number(self) -> int:
        self.is_valid()
        return self.cleaned_data.get("page") or 1


class RunFilterForm(forms.Form):
    status = forms.ChoiceField(required=False)
    reason = forms.ChoiceField(required=False)
    agent = forms.ChoiceField(required=False)
    team = forms.ChoiceField(required=False)
    since = forms.DateField(required=False, label="From",
                            widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To",
                            widget=forms.DateInput(attrs={"type": "date"}))
    page = forms.IntegerField(required=False, min_value=1)

    def __init__(self, *args, teams=(), agents=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        anything = [("", "Any")]
        self.fields["status"].choices = anything + [(s.value, s.value.replace("_", " "))
                                                    for s in RunStatus]
        self.fields["reason"].choices = anything + [("escalated", "escalated (any reason)")] + [
            (r.value, r.value.replace("_", " ")) for r in Reason if r.value]
        self.fields["agent"].choices = anything + [(a, a) for a in agents]
        self.fields["team"].choices = anything + [(slug, name) for slug, name in teams]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return data

    def filters(self):
        self.is_valid()  # keeps the valid fields of a partly invalid query
        data = self.cleaned_data
        return RunFilters(status=data.get("status") or "", reason=data.get("reason") or "",
                          agent=data.get("agent") or "", team=data.get("team") or "",
                          since=data.get("since"), until=data.get("until"))

    def page_number(self) -> int:
        self.is_valid()
        return self.cleaned_data.get("page") or 1


class ThresholdForm(forms.Form):
    """Apply the threshold calibration suggests for one agent's tier."""

    agent = forms.IntegerField(min_value=1)
    tier = forms.CharField(max_length=20)
    threshold = forms.FloatField(min_value=0.0, max_value=1.0,
                                 help_text="The suggestion the admin saw and confirmed.")


class ReviewForm(forms.Form):
    verdict = forms.ChoiceField(choices=[("approve", "Approve"), ("flag", "Flag")])
