"""Small display helpers for the operator console's templates."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def pretty_json(value: object) -> str:
    """Indented, key-sorted JSON for <pre> blocks (non-JSON values via ``str``)."""
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


@register.filter
def usd(value: object) -> str:
    """A dollar amount with as many decimals as a small model call needs to be visible."""
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if amount == 0:
        return "$0"
    places = 2 if abs(amount) >= 1 else 4 if abs(amount) >= Decimal("0.01") else 6
    return f"${amount:,.{places}f}"


@register.filter
def humanize(value: object) -> str:
    """``approval_required`` → ``approval required``."""
    return str(value or "").replace("_", " ")


@register.filter
def confidence(value: object) -> str:
    """A 0..1 confidence as a two-decimal number, or a dash when the step has none."""
    if value is None or value == "":
        return "—"
    try:
        return f"{float(value):.2f}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def confidence_level(value: object) -> str:
    """A CSS modifier (``low``/``mid``/``high``) for a confidence value."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "none"
    return "low" if number < 0.5 else "mid" if number < 0.8 else "high"


@register.filter
def bar_level(pct: object) -> str:
    """A CSS modifier for a usage bar: calm, warn (≥ 75 %), full (≥ 100 %)."""
    try:
        number = float(pct)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "ok"
    return "full" if number >= 100 else "warn" if number >= 75 else "ok"


@register.filter
def css_pct(value: object) -> str:
    """A percentage for an inline ``width`` style: locale-proof, clamped to 0..100."""
    try:
        number = max(0.0, min(100.0, float(value)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = 0.0
    return f"{number:.1f}%"


@register.simple_tag(takes_context=True)
def nav_active(context: template.Context, prefix: str, exclude: str = "") -> str:
    """``aria-current="page"`` for the nav link of the page being shown."""
    request = context.get("request")
    path = getattr(request, "path", "") or ""
    hit = path.startswith(prefix) and not (exclude and path.startswith(exclude))
    return mark_safe(' aria-current="page"') if hit else ""
