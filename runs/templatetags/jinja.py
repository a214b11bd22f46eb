"""The Jinja2 environment of the console's hot templates (``templates/jinja2/``).

Only what renders many times a request is there: the inbox row (``runs.templatetags.inbox``
says why). It uses the helpers the Django templates use — the filters of
``runs.templatetags.console`` and Django's own — so a value reads the same on every page.
"""

from __future__ import annotations

from django.template import defaultfilters
from django.urls import reverse
from jinja2 import Environment, StrictUndefined

from . import console


def url(name: str, *args: object) -> str:
    """``{{ url("escalation_detail", esc.pk) }}``: Django's ``{% url %}``."""
    return reverse(name, args=args)


def environment(**options: object) -> Environment:
    # every value escaped, as in Django's templates; a missing variable is a bug in the
    # view, not an empty string on an operator's screen (Django's backend passes Undefined)
    options = {k: v for k, v in options.items() if k not in ("autoescape", "undefined")}
    env = Environment(autoescape=True, undefined=StrictUndefined, **options)  # type: ignore[arg-type]
    env.globals["url"] = url
    env.filters.update(
        claim_state=console.claim_state, status_label=console.status_label,
        due_level=console.due_level, time_left=console.time_left, stamp=console.stamp,
        confidence=console.confidence, confidence_level=console.confidence_level,
        duration=console.duration, timesince=defaultfilters.timesince_filter,
        truncatechars=defaultfilters.truncatechars,
    )
    return env
