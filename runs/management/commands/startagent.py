from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agentdesk.agents import get_agent
from agentdesk.agents.scaffold import Names, ScaffoldError, create


class Command(BaseCommand):
    help = ("Scaffold an installable agent package NAME/: the agent spec, a read-only and a "
            "side-effecting tool, a knowledge folder and tests with the test kit "
            "(README: 'Write your own agent').")
    # Scaffolding touches no database and must work while an agent path is broken (the
    # system checks would refuse to run any command then).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="e.g. helpdesk: the folder, the package (helpdesk) "
                                         "and the agent slug (dashes for underscores).")
        parser.add_argument("--directory", default=".",
                            help="Create NAME/ in this existing directory (default: the "
                                 "current one).")

    def handle(self, *args, name: str, directory: str, **options) -> None:
        try:
            names = Names.from_name(name)
            if get_agent(names.slug) is not None:
                raise ScaffoldError(f"an installed agent already has the slug {names.slug!r}; "
                                    "pick another name.")
            target = create(name, Path(directory))
        except ScaffoldError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(
            f"Created agent {names.slug!r} (package {names.package}) in {target}"))
        self.stdout.write(
            "Next:\n"
            f"  pip install -e {target}          # into AgentDesk's environment\n"
            f"  (cd {target} && python -m pytest)  # its tests, with the test kit\n"
            "  restart make run: seed_demo adds it to team 'demo' (other teams: admin → "
            f"Agents → Add, slug {names.slug})")
