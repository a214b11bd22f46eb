"""AgentDesk's data, one module per concept; imported here so Django finds every model."""

from .catalogue import ModelProfile
from .escalations import AuditEvent, Escalation
from .labels import ConfidenceLabel, ReviewItem
from .policies import Policy, Rule
from .runs import Agent, Run, Step, TeamDailySpend, ToolCall
from .teams import ApiKey, Membership, Team
from .webhooks import WebhookDelivery

__all__ = [
    "Agent",
    "ApiKey",
    "AuditEvent",
    "ConfidenceLabel",
    "Escalation",
    "Membership",
    "ModelProfile",
    "ReviewItem",
    "Policy",
    "Rule",
    "Run",
    "Step",
    "Team",
    "TeamDailySpend",
    "ToolCall",
    "WebhookDelivery",
]
