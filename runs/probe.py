"""Probing a catalogue model and recording what its endpoint accepts.

Behind ``manage.py probe_model NAME`` and admin → Models → "Probe selected models": the
runtime's ``Prober`` asks the configured endpoint (``LLM_BASE_URL``, the one the workers
use), and the capabilities it found replace the row's, with ``probed_at`` and the full
``probe_report`` (every request and answer) so an admin can see why. Prices are never
touched: a probe cannot know them, and a model created by a probe stays unpriced (it
cannot spend) until an admin sets them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agentdesk.runtime import profiles
from agentdesk.runtime.probing import CAPABILITIES, Prober, ProbeResult

from . import errors
from .models import ModelProfile

EVIDENCE_CHARS = 110


@dataclass(frozen=True)
class Change:
    """One capability: what the catalogue said, what the endpoint showed, and why."""

    field: str
    old: Any
    new: Any
    evidence: str

    @property
    def changed(self) -> bool:
        return _shown(self.old) != _shown(self.new)

    def line(self) -> str:
        label = str(ModelProfile._meta.get_field(self.field).verbose_name).capitalize()
        found = (f"{_shown(self.old)} → {_shown(self.new)}" if self.changed
                 else f"{_shown(self.new)} (unchanged)")
        evidence = self.evidence if len(self.evidence) <= EVIDENCE_CHARS \
            else self.evidence[: EVIDENCE_CHARS - 1] + "…"
        return f"{label}: {found}   [{evidence}]"


@dataclass
class ProbeOutcome:
    name: str
    changes: list[Change] = field(default_factory=list)
    usage_reported: bool = True
    saved: bool = False
    created: bool = False
    priced: bool = True

    def lines(self) -> list[str]:
        """What the probe found, one line per capability, then usage and what was done."""
        lines = [change.line() for change in self.changes]
        lines.append("Usage: returned with every reply" if self.usage_reported else
                     "Usage: MISSING from some replies (such calls are billed at the worst "
                     "case reserved for them)")
        if not self.saved:
            lines.append("Dry run: nothing saved.")
        else:
            lines.append(f"Saved: admin → Models → {self.name}"
                         + (" (created)" if self.created else "") + ".")
        if not self.priced:
            lines.append(f"{self.name} has no price: it cannot spend until you set its prices "
                         "in admin → Models (0 is a valid price for a local model).")
        return lines

    def summary(self) -> str:
        """One sentence for an admin message."""
        changed = [change for change in self.changes if change.changed]
        found = "; ".join(f"{c.field} {_shown(c.old)} → {_shown(c.new)}" for c in changed)
        return f"{self.name}: " + (found or "capabilities confirmed, nothing changed") + (
            "" if self.usage_reported else "; replies come WITHOUT usage") + (
            "" if self.saved else " (dry run, not saved)") + "."


def configured_prober() -> Prober:
    """A prober for the endpoint the workers call."""
    return Prober(base_url=settings.LLM_BASE_URL, api_key=settings.LLM_API_KEY,
                  timeout=settings.LLM_TIMEOUT_SECONDS, max_retries=settings.LLM_MAX_RETRIES)


def probe_model(name: str, *, dry_run: bool = False, create: bool = False,
                prober: Prober | None = None) -> ProbeOutcome:
    """Probe catalogue model ``name`` and, unless ``dry_run``, save what was found.

    Raises ``errors.NotFound`` for a name not in the catalogue (unless ``create``), and the
    runtime's ``ModelError`` when the endpoint cannot be probed at all."""
    row = ModelProfile.objects.filter(name=name).first()
    if row is None and not create:
        known = ", ".join(ModelProfile.objects.values_list("name", flat=True)) or "none"
        raise errors.NotFound(
            f"No model {name!r} in the catalogue (known: {known}). Add it in admin → Models, "
            f"or probe with --create to add it.")
    current = row.profile() if row is not None else profiles.ModelProfile(name=name)
    result = (prober or configured_prober()).probe(current)
    outcome = ProbeOutcome(
        name=name, usage_reported=result.usage_reported, created=row is None,
        changes=[Change(f, getattr(current, f), result.found[f], result.evidence.get(f, ""))
                 for f in CAPABILITIES if f in result.found],
        priced=current.priced,
    )
    if not dry_run:
        _save(name, result)
        outcome.saved = True
    return outcome


@transaction.atomic
def _save(name: str, result: ProbeResult) -> None:
    values = {f: _stored(result.found[f]) for f in CAPABILITIES if f in result.found}
    values.update(probed_at=timezone.now(), probe_report=result.report())
    ModelProfile.objects.update_or_create(name=name, defaults=values)


def _stored(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    value = _stored(value)
    return str(value) if value not in ("", None) else "—"
