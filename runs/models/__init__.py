"""AgentDesk's data, one module per concept; imported here so Django finds every model."""

from .catalogue import ModelProfile
from .escalations import AuditEvent, Escalation
from .policies import Policy, Rule
from .runs import Agent, Run, Step, TeamDailySpend, ToolCall
from .teams import ApiKey, Membership, Team
from .webhooks import WebhookDelivery

__all__ = [
    "Agent",
    "ApiKey",
    "AuditEvent",
    "Escalation",
    "Membership",
    "ModelProfile",
    "Policy",
    "Rule",
    "Run",
    "Step",
    "Team",
    "TeamDailySpend",
    "ToolCall",
    "WebhookDelivery",
]
