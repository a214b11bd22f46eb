"""Small display helpers for the operator console's templates."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from runs import audit, claims
from runs.audit import ACTION_LABELS

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


# Words people read for a status or reason whose code reads badly; the rest lose their
# underscores. One place, so no page shows ``waiting_human`` while another says otherwise.
STATUS_LABELS = {"waiting_human": "waiting for human"}


@register.filter
def status_label(value: object) -> str:
    """A run's (or escalation's) status or reason as shown to people: ``waiting_human`` →
    ``waiting for human``, ``approval_required`` → ``approval required``. The CSS class
    keeps the raw value."""
    code = str(value or "")
    return STATUS_LABELS.get(code, code.replace("_", " "))


@register.filter
def humanize(value: object) -> str:
    """``take_over`` → ``take over`` (statuses and reasons: see ``status_label``)."""
    return status_label(value)


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
def bar_level(bar: object) -> str:
    """A CSS modifier for a usage bar: ok, warn (≥ 75 %), full (the limit is reached), over
    (past it: steps after the bound, such as the escalation, are still recorded). Takes a
    bar of ``Run.usage_bars`` or a bare percentage."""
    if isinstance(bar, dict):
        if bar.get("over"):
            return "over"
        if bar.get("reached"):
            return "full"
        bar = bar.get("pct")
    try:
        number = float(bar)  # type: ignore[arg-type]
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
    return mark_safe(' aria-current="page"') if hit else ""  # nosec B308  # a constant


def _seconds(value: object) -> float | None:
    if value is None or value == "":
        return None
    if hasattr(value, "total_seconds"):
        return value.total_seconds()  # type: ignore[union-attr]
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@register.filter
def duration(value: object) -> str:
    """Seconds (or a timedelta) as ``42s``, ``3m 05s``, ``2h 10m``, ``3d 4h``."""
    seconds = _seconds(value)
    if seconds is None:
        return "—"
    s = int(round(abs(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


@register.filter
def time_to_decision(esc: object) -> str:
    """decided_at − created_at of an escalation, or a dash while it is open."""
    decided, created = getattr(esc, "decided_at", None), getattr(esc, "created_at", None)
    return duration(decided - created) if decided and created else "—"


@register.filter
def stamp(value: object, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    """A datetime in the current time zone by a ``strftime`` format (``iso`` for ISO 8601):
    what ``|date`` does for the formats the console uses, for a fraction of its cost — it
    runs several times on each of an inbox page's rows."""
    from django.utils import timezone

    if not isinstance(value, datetime):
        return ""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return local.isoformat() if fmt == "iso" else local.strftime(fmt)


@register.filter
def time_left(deadline: object) -> str:
    """What is left before an SLA deadline: ``12m left``, ``overdue 3m``, or a dash."""
    from django.utils import timezone

    if deadline is None or not hasattr(deadline, "tzinfo"):
        return "—"
    left = (deadline - timezone.now()).total_seconds()  # type: ignore[operator]
    return f"overdue {duration(-left)}" if left < 0 else f"{duration(left)} left"


@register.filter
def due_level(deadline: object) -> str:
    """A CSS modifier for the deadline chip: none, ok, soon (< 15 min), overdue."""
    from django.utils import timezone

    if deadline is None or not hasattr(deadline, "tzinfo"):
        return "none"
    left = (deadline - timezone.now()).total_seconds()  # type: ignore[operator]
    return "overdue" if left < 0 else "soon" if left < 900 else "ok"


@register.filter
def claim_state(esc: object, user: object) -> str:
    """``free``, ``mine``, ``theirs`` (a live claim) or ``stale`` (anyone may take it over)."""
    if getattr(esc, "claimed_by_id", None) is None:
        return "free"
    if claims.is_stale(esc):  # type: ignore[arg-type]
        return "stale" if esc.claimed_by_id != getattr(user, "pk", None) else "mine"
    return "mine" if esc.claimed_by_id == getattr(user, "pk", None) else "theirs"


@register.filter
def percent(value: object) -> str:
    try:
        return f"{float(value) * 100:.0f}%"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"


@register.filter
def audit_label(action: str) -> str:
    return ACTION_LABELS.get(action, action.replace("_", " ").replace(".", " "))


@register.filter
def compact_json(value: object) -> str:
    """One-line JSON for previews (a tool's result in the timeline)."""
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False,
                      separators=(", ", ": "))


@register.filter
def ago(value: object) -> str:
    """``3 hours ago``: the largest unit only, so a list column stays one line."""
    from django.utils.timesince import timesince

    if not value:
        return "—"
    return f"{timesince(value, depth=1)} ago"  # type: ignore[arg-type]


@register.filter
def audit_changes(detail: object) -> list[tuple[str, object, object]]:
    """An admin change's ``(field, before, after)`` rows (empty for other events)."""
    return audit.changes(detail) if isinstance(detail, dict) else []


@register.simple_tag
def keyed(label: str, key: str) -> SafeString:
    """A button's label with its shortcut letter marked, the word left whole.

    ``{% keyed "Approve" "a" %}`` →
    ``<span class="key-label"><span class="key-letter">A</span>pprove</span>``: the mark is
    inline inside one run of text, so the accessible name is still "Approve". The outer
    span matters: a ``.btn`` is a flex box, whose children are blocks, and a block mark
    splits the name ("A pprove"). The button names its key with ``aria-keyshortcuts``. The
    letter is the first one that starts a word, else the first anywhere; a key the label
    does not contain (x for Abort) follows it in a ``<kbd>`` hidden from assistive
    technology, so it is not read as part of the name either.
    """
    words = [i for i, ch in enumerate(label) if ch.lower() == key.lower()
             and (i == 0 or not label[i - 1].isalnum())]
    at = words[0] if words else label.lower().find(key.lower())
    if not key or at < 0:
        return format_html('{} <kbd class="key-cap" aria-hidden="true">{}</kbd>', label, key)
    return format_html('<span class="key-label">{}<span class="key-letter">{}</span>{}</span>',
                       label[:at], label[at:at + len(key)], label[at + len(key):])
