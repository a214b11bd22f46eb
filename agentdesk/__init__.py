"""AgentDesk: AI agents in production, with a human one click away.

Kept import-free so the plain-Python runtime and simulator load without Django or Celery;
the Celery app is loaded by ``runs.apps.RunsConfig.ready``.
"""
