from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs and escalations"

    def ready(self) -> None:
        # Bind @shared_task to our Celery app before any task is sent.
        import agentdesk.celery  # noqa: F401
