"""The demo data ``seed_demo`` creates: idempotent, safe to run on every start."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from agentdesk.agents import AGENTS
from agentdesk.llmsim.models import price_table

from .models import Agent, Membership, ModelPrice, Policy, Team


@dataclass(frozen=True)
class DemoLogins:
    password: str
    generated: bool


def seed_prices() -> None:
    """Bill with the simulator's published prices (taken from real price lists)."""
    for name, prices in price_table().items():
        ModelPrice.objects.update_or_create(
            model=name,
            defaults={
                "input_per_mtok": prices.input_per_million,
                "cached_input_per_mtok": prices.cached_input_per_million,
                "output_per_mtok": prices.output_per_million,
            },
        )


@transaction.atomic
def seed_demo(password: str = "") -> DemoLogins:
    generated = not password
    password = password or secrets.token_urlsafe(9)
    seed_prices()
    team, _ = Team.objects.get_or_create(slug="demo", defaults={"name": "Demo team"})
    policy, _ = Policy.objects.get_or_create(name="support-default")
    for spec in AGENTS.values():
        Agent.objects.update_or_create(
            team=team, slug=spec.slug,
            defaults={"name": spec.name, "input_schema": spec.input_model.model_json_schema(),
                      "policy": policy},
        )
    users = get_user_model()
    for username, role, staff in (("operator", "operator", False), ("admin", "admin", True)):
        user, _ = users.objects.get_or_create(username=username)
        user.is_staff = staff
        user.is_superuser = staff
        user.set_password(password)
        user.save()
        Membership.objects.update_or_create(user=user, team=team, defaults={"role": role})
    return DemoLogins(password=password, generated=generated)
