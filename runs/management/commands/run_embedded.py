from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from runs import embedded


class Command(BaseCommand):
    help = ("Serve AgentDesk in one process: ASGI (HTTP + websockets), a Celery worker "
            "thread and, without OPENAI_API_KEY, the bundled LLM simulator.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-worker", action="store_true",
                            help="Do not start a worker (one runs elsewhere, on Redis).")

    def handle(self, *args, host: str, port: int, no_worker: bool, **options) -> None:
        if settings.EMBEDDED and no_worker:
            self.stderr.write("--no-worker needs REDIS_URL: the memory broker is in-process.")
        if port == settings.LLMSIM_PORT and not settings.OPENAI_API_KEY:
            raise CommandError(
                f"Port {port} is the bundled LLM simulator's (LLMSIM_PORT): serve AgentDesk "
                "on another port (make run PORT=…) or move the simulator (LLMSIM_PORT=…).")
        self.stdout.write(self.style.SUCCESS(f"AgentDesk at http://{host}:{port}/"))
        embedded.run(host, port, with_worker=not no_worker)
