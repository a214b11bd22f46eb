"""Forms for the console: submitting a task and deciding an escalation."""

from __future__ import annotations

from django import forms

from agentdesk.agents.support_refunds.agent import MAX_MESSAGE_CHARS
from agentdesk.runtime.outcomes import Decision

from .models import Agent


class NewRunForm(forms.Form):
    agent = forms.ModelChoiceField(queryset=Agent.objects.none(), empty_label=None)
    message = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "What should the agent do?"}),
        max_length=MAX_MESSAGE_CHARS, strip=True,
    )

    def __init__(self, *args, agents=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if agents is not None:
            self.fields["agent"].queryset = agents
        self.fields["agent"].label_from_instance = lambda a: f"{a.slug} — {a.team.name}"


class DecisionForm(forms.Form):
    action = forms.ChoiceField(choices=[(d.value, d.value) for d in Decision])
    message = forms.CharField(required=False, max_length=4000, strip=True,
                              widget=forms.Textarea(attrs={"rows": 2}))
