"""``python manage.py create_api_key --team SLUG [--name N] [--scopes submit,read,resolve]``

Prints the new key once; only its hash is stored."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from runs.api_keys import ALL_SCOPES, create_api_key, parse_scopes
from runs.models import Team


class Command(BaseCommand):
    help = "Create an API key for a team and print it (shown only this once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--team", required=True, help="The team's slug.")
        parser.add_argument("--name", default="api", help="A label for the key.")
        parser.add_argument("--scopes", default=",".join(ALL_SCOPES),
                            help=f"Comma-separated, of {', '.join(ALL_SCOPES)} (default all).")
        parser.add_argument("--rate-limit", type=int, default=None,
                            help="Requests per minute (default 600).")

    def handle(self, *args, **options) -> None:
        team = Team.objects.filter(slug=options["team"]).first()
        if team is None:
            raise CommandError(f"No team with slug {options['team']!r}.")
        try:
            scopes = parse_scopes(options["scopes"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if options["rate_limit"] is not None and options["rate_limit"] < 1:
            raise CommandError("--rate-limit must be at least 1.")
        new = create_api_key(team=team, name=options["name"], scopes=scopes,
                             rate_limit_per_minute=options["rate_limit"])
        self.stderr.write(f"API key {new.key.prefix}… for team {team.slug} "
                          f"(scopes: {', '.join(new.key.scopes)}). Store it now; it is not "
                          "shown again:")
        self.stdout.write(new.raw)
