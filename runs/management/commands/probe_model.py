"""``python manage.py probe_model NAME [--dry-run] [--create]``

Sends a few small requests to the configured endpoint to find out what model NAME accepts
(native tools, json_schema / json_object, reasoning parameters, logprobs, usage) and
saves it on the catalogue row. The logic is ``runs.probe``; admin → Models has the same
as the action "Probe selected models"."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from agentdesk.runtime.llm import ModelError
from runs import errors
from runs.probe import probe_model


class Command(BaseCommand):
    help = "Probe a model's endpoint and fill in its capabilities in the catalogue."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="The model's name, as in admin → Models.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Print what the probe finds; change nothing.")
        parser.add_argument("--create", action="store_true",
                            help="Add the model to the catalogue if it is not there (unpriced).")

    def handle(self, *args, **options) -> None:
        name = options["name"]
        self.stdout.write(f"Probing {name} at {settings.LLM_BASE_URL or 'api.openai.com'} …")
        try:
            outcome = probe_model(name, dry_run=options["dry_run"], create=options["create"])
        except (errors.NotFound, ModelError) as exc:
            raise CommandError(str(exc)) from None
        for line in outcome.lines():
            self.stdout.write(f"  {line}")
