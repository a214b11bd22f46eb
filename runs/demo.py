"""The demo data ``seed_demo`` creates: idempotent, safe to run on every start."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from agentdesk.agents import AGENTS
from agentdesk.llmsim.models import MODELS as SIM_MODELS

from . import knowledge
from .models import Agent, Membership, ModelProfile, Policy, Team

# OpenAI's list prices (USD per 1M tokens: input, cached input, output), standard tier.
# The GPT-5 family are reasoning models: max_completion_tokens, no temperature.
OPENAI_MODELS = {
    "gpt-5.5": ("5.00", "0.50", "30.00"),
    "gpt-5.4": ("2.50", "0.25", "15.00"),
    "gpt-5.4-mini": ("0.75", "0.075", "4.50"),
    "gpt-5.4-nano": ("0.20", "0.02", "1.25"),
}


@dataclass(frozen=True)
class DemoLogins:
    password: str
    generated: bool


def seed_models() -> None:
    """The catalogue's starting rows: the simulator's tiers (billed at the real list prices
    they imitate) and OpenAI's current models. Rows an admin already has are left alone."""
    for name, sim in SIM_MODELS.items():
        ModelProfile.objects.get_or_create(name=name, defaults={
            "input_per_mtok": sim.prices.input_per_million,
            "cached_input_per_mtok": sim.prices.cached_input_per_million,
            "output_per_mtok": sim.prices.output_per_million,
            "context_window": sim.context_window, "max_output_tokens": 16_384,
        })
    for name, (inp, cached, out) in OPENAI_MODELS.items():
        ModelProfile.objects.get_or_create(name=name, defaults={
            "input_per_mtok": Decimal(inp), "cached_input_per_mtok": Decimal(cached),
            "output_per_mtok": Decimal(out), "context_window": 1_000_000,
            "max_output_tokens": 128_000, "reasoning": True, "tokenizer": "o200k_base",
        })


@transaction.atomic
def seed_demo(password: str = "") -> DemoLogins:
    generated = not password
    password = password or secrets.token_urlsafe(9)
    seed_models()
    team, _ = Team.objects.get_or_create(slug="demo", defaults={"name": "Demo team"})
    policy, _ = Policy.objects.get_or_create(team=team, name="support-default")
    for spec in AGENTS.values():
        agent, _ = Agent.objects.update_or_create(
            team=team, slug=spec.slug,
            defaults={"name": spec.name, "input_schema": spec.input_json_schema(),
                      "policy": policy},
        )
        knowledge.sync_folder(agent, spec.knowledge_dir)  # the documents its package ships
    users = get_user_model()
    for username, role, staff in (("operator", "operator", False), ("admin", "admin", True)):
        user, _ = users.objects.get_or_create(username=username)
        user.is_staff = staff
        user.is_superuser = staff
        user.set_password(password)
        user.save()
        Membership.objects.update_or_create(user=user, team=team, defaults={"role": role})
    return DemoLogins(password=password, generated=generated)
