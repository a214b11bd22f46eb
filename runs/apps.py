from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.signals import setting_changed

from agentdesk.agents import AGENTS

from . import checks as agent_checks


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs and escalations"

    def ready(self) -> None:
        # Bind @shared_task to our Celery app before any task is sent.
        import agentdesk.celery  # noqa: F401

        AGENTS.configure(settings.AGENTDESK_AGENTS)
        checks.register(agent_checks.agents_load)
        checks.register(agent_checks.secret_key_set, checks.Tags.security, deploy=True)
        setting_changed.connect(agent_checks.follow_agent_setting)
