"""Shared bits of the models."""

from __future__ import annotations

from decimal import Decimal

ZERO = Decimal("0")


def choices_of(enum: type) -> list[tuple[str, str]]:
    return [(m.value, m.value.replace("_", " ") or "—") for m in enum]
