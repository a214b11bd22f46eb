from django.conf import settings
from django.core.management.base import BaseCommand

from runs.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo team, policy, agent, prices and users (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--password", default=settings.DEMO_PASSWORD,
                            help="Password for the demo users (default: "
                                 "$AGENTDESK_DEMO_PASSWORD, else a random one).")

    def handle(self, *args, password: str, **options) -> None:
        logins = seed_demo(password)
        self.stdout.write(self.style.SUCCESS("Demo data ready: team 'demo'."))
        note = " (generated)" if logins.generated else ""
        self.stdout.write(f"  users: operator, admin   password: {logins.password}{note}")
