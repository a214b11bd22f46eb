"""AgentDesk's data, one module per concept; imported here so Django finds every model."""

from .catalogue import ModelProfile
from .escalations import AuditEvent, Escalation
from .knowledge import KnowledgeChunk, KnowledgeDocument, KnowledgeTerm
from .labels import ConfidenceLabel, ReviewItem
from .notifications import NotificationDelivery, NotificationEvent, NotificationTarget
from .policies import Policy, Rule
from .runs import Agent, Run, Step, TeamDailySpend, ToolCall
from .snapshots import PolicySnapshotRecord
from .teams import ApiKey, Membership, Team
from .tools import HttpTool, McpServer
from .webhooks import WebhookDelivery

__all__ = [
    "Agent",
    "ApiKey",
    "AuditEvent",
    "ConfidenceLabel",
    "Escalation",
    "HttpTool",
    "KnowledgeChunk",
    "KnowledgeDocument",
    "KnowledgeTerm",
    "McpServer",
    "Membership",
    "ModelProfile",
    "NotificationDelivery",
    "NotificationEvent",
    "NotificationTarget",
    "ReviewItem",
    "Policy",
    "PolicySnapshotRecord",
    "Rule",
    "Run",
    "Step",
    "Team",
    "TeamDailySpend",
    "ToolCall",
    "WebhookDelivery",
]
