"""Sending notifications: the outbox rows ``runs.notifications`` wrote, per target, through
apprise (or Django's mail for ``email:`` targets), rate-limited, batched and retried.

**Rate limit and digest.** A target gets at most ``NOTIFICATION_RATE_PER_MINUTE`` messages
(default 5) in each one-minute window; a window starts with the first message sent after
the previous one ended, and failed attempts count too. A worker's pass over a target sends
what is due: each row as a message of its own when they all fit in what the window has
left, else all of them together as one digest (up to ``DIGEST_MAX`` rows; a long digest
lists the first ``DIGEST_LINES`` and links to the inbox for the rest). When the window has
nothing left, the rows wait for the next window and go then. A target's sender is woken
``NOTIFICATION_BATCH_SECONDS`` (default 2 s) after a row is written, so what fires at once
is seen at once. So a burst of 40 escalations reaches a chat as a handful of messages, not
40, and never more than the rate.

**Retries.** A message that fails is tried again with the webhooks' exponential backoff
(``WEBHOOK_BACKOFF_*``) up to ``WEBHOOK_MAX_ATTEMPTS`` times, then its rows are ``failed``
(admin can send them again). A lost task is covered by ``retry_due`` (celery beat). One
worker at a time sends to a target (``sending_until``, a lease taken by a conditional
UPDATE), so the window's count is exact.

**Secrets.** A destination often holds a token (Slack, Teams, Discord URLs): it is never
logged, never put in an error text (``scrub``), and admin shows it masked. apprise's own
logger is kept at WARNING and not propagated; what it says about a failed message is stored,
scrubbed, on the rows.

**Where to.** ``json://``, ``form://`` and ``xml://`` targets are HTTP requests to the host
they name: outside the embedded default they get the webhooks' public-address check
(``runs.callback_urls``) when saved and before each send (apprise resolves the name itself,
so that check cannot pin the address as webhooks do). Targets are set by staff in admin.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import apprise
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db.models import F, Min, Q
from django.utils import timezone

from . import callback_urls, enqueue
from .models import NotificationDelivery, NotificationTarget

log = logging.getLogger(__name__)
# apprise logs request URLs (tokens included) at DEBUG: keep it quiet and out of our logs.
logging.getLogger("apprise").setLevel(logging.WARNING)
logging.getLogger("apprise").propagate = False

WINDOW = timedelta(minutes=1)
DIGEST_MAX = 500
DIGEST_LINES = 30
EMAIL_PREFIX = "email:"
HTTP_SCHEMES = {"json": "http", "jsons": "https", "form": "http", "forms": "https",
                "xml": "http", "xmls": "https"}
NOTIFY_PURPOSE = ("notification host", "notifications only go to public addresses")
SEVERITY = {"escalation.opened": "info", "escalation.sla_50": "warning",
            "escalation.sla_90": "warning", "run.failed": "failure", "budget.80": "warning",
            "budget.100": "failure"}
RANK = {"info": 0, "success": 0, "warning": 1, "failure": 2}


# -- destinations ----------------------------------------------------------------------------


def email_addresses(destination: str) -> list[str] | None:
    """The addresses of an ``email:`` target, or None for an apprise URL."""
    if not destination.lower().startswith(EMAIL_PREFIX):
        return None
    return [a.strip() for a in destination[len(EMAIL_PREFIX):].split(",") if a.strip()]


def validate(destination: str) -> str:
    """The destination, stripped; ValidationError saying what is wrong (never echoing it)."""
    destination = destination.strip()
    addresses = email_addresses(destination)
    if addresses is not None:
        if not addresses:
            raise ValidationError("Give at least one address after email:.")
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError(f"{address!r} is not an email address.") from None
        return destination
    if apprise.Apprise.instantiate(destination) is None:
        raise ValidationError("Not a URL apprise can send to (e.g. slack://…, json://host/path, "
                              "mailto://…), nor email:address,….")
    try:
        check_host(destination)
    except callback_urls.RefusedURL as exc:
        raise ValidationError(str(exc)) from None
    return destination


def check_host(destination: str) -> None:
    """RefusedURL when an HTTP-style target names a host notifications must not reach."""
    scheme = destination.split("://", 1)[0].lower()
    if scheme not in HTTP_SCHEMES:
        return
    parts = urlsplit(destination)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        raise callback_urls.RefusedURL("The URL's port is not a number.") from None
    callback_urls.check(f"{HTTP_SCHEMES[scheme]}://{parts.hostname}{port}/", NOTIFY_PURPOSE)


def masked(destination: str) -> str:
    """What admin shows once a destination is saved: its kind, never its secret parts."""
    addresses = email_addresses(destination)
    if addresses is not None:
        return f"email: {len(addresses)} address{'es' if len(addresses) != 1 else ''} (hidden)"
    scheme = destination.split("://", 1)[0] if "://" in destination else "?"
    return f"{scheme}://•••• (hidden)"


def scrub(text: str, destination: str) -> str:
    """``text`` without any part of ``destination`` that could be a secret (user, password,
    path segments, query values): only the scheme and host may stay."""
    host = (urlsplit(destination).hostname or "") if "://" in destination else ""
    scheme = destination.split("://", 1)[0] if "://" in destination else ""
    text = text.replace(destination, "••••")
    for piece in sorted(set(re.split(r"[/:@?&=#,+;\s]+", destination)), key=len, reverse=True):
        if len(piece) >= 4 and piece.lower() not in (host.lower(), scheme.lower()):
            text = text.replace(piece, "••••")
    return text


# -- sending -----------------------------------------------------------------------------------


def deliver(destination: str, title: str, body: str, severity: str = "info") -> str:
    """Send one message now. Returns "" when it was accepted, else why not (scrubbed);
    raises RefusedURL for a host notifications must not reach (not worth retrying)."""
    addresses = email_addresses(destination)
    if addresses is not None:
        try:
            send_mail(title, body, settings.DEFAULT_FROM_EMAIL, addresses, fail_silently=False)
        except Exception as exc:  # SMTP refused, unreachable…: retried
            return scrub(f"{type(exc).__name__}: {exc}", destination)[:2000]
        return ""
    check_host(destination)
    sender = apprise.Apprise()
    if not sender.add(destination):
        return "Not a URL apprise can send to."
    result = sender.notify(body=body, title=title, notify_type=severity,
                           timeout=settings.NOTIFICATION_TIMEOUT_SECONDS,
                           log_level=logging.WARNING)
    if result:
        return ""
    said = "; ".join(entry.message for entry in result.logs()) or f"apprise: {result.status}"
    return scrub(said, destination)[:2000]


def backoff_seconds(attempts: int) -> float:
    base = settings.WEBHOOK_BACKOFF_BASE_SECONDS
    return min(base * 2 ** max(0, attempts - 1), settings.WEBHOOK_BACKOFF_MAX_SECONDS)


def lease_seconds() -> float:
    return settings.NOTIFICATION_RATE_PER_MINUTE * settings.NOTIFICATION_TIMEOUT_SECONDS + 30


def send_due(target_id: int) -> float | None:
    """One pass over a target: send what is due (alone or as a digest, within the rate).
    Returns seconds until the next pass is needed, or None when nothing is left to send
    (or another worker is sending to this target: it looks again before it lets go)."""
    now = timezone.now()
    taken = NotificationTarget.objects.filter(pk=target_id).filter(
        Q(sending_until__isnull=True) | Q(sending_until__lt=now)
    ).update(sending_until=now + timedelta(seconds=lease_seconds()))
    if not taken:
        return None
    try:
        _pass(target_id)
    finally:
        NotificationTarget.objects.filter(pk=target_id).update(sending_until=None)
    return _next_pass_in(target_id)  # read after letting go: rows written meanwhile count


def _pass(target_id: int) -> None:
    target = NotificationTarget.objects.select_related("team").get(pk=target_id)
    now = timezone.now()
    pending = NotificationDelivery.objects.filter(target=target,
                                                  status=NotificationDelivery.Status.PENDING)
    if not target.enabled:
        pending.update(status=NotificationDelivery.Status.FAILED, next_attempt_at=None,
                       last_error="The target was disabled before this was sent.")
        return
    due = list(pending.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
               .order_by("created_at", "pk")[:DIGEST_MAX])
    left = _allowance(target, now)
    if not due or left <= 0:
        return
    for batch in ([[row] for row in due] if len(due) <= left else [due]):
        _send(target, batch)


def _allowance(target: NotificationTarget, now: datetime) -> int:
    """Messages the target may still get in its current window."""
    rate = settings.NOTIFICATION_RATE_PER_MINUTE
    if target.window_started_at is None or now - target.window_started_at >= WINDOW:
        return rate
    return rate - target.window_count


def _count_message(target: NotificationTarget, now: datetime) -> None:
    if target.window_started_at is None or now - target.window_started_at >= WINDOW:
        target.window_started_at, target.window_count = now, 1
    else:
        target.window_count += 1
    NotificationTarget.objects.filter(pk=target.pk).update(
        window_started_at=target.window_started_at, window_count=target.window_count)


def _next_pass_in(target_id: int) -> float | None:
    """Seconds until the target's next pass: its earliest pending row, held back to the end
    of a window that has nothing left."""
    earliest = NotificationDelivery.objects.filter(
        target_id=target_id, status=NotificationDelivery.Status.PENDING
    ).aggregate(at=Min("next_attempt_at"))["at"]
    if earliest is None:
        return None
    now = timezone.now()
    target = NotificationTarget.objects.get(pk=target_id)
    if _allowance(target, now) <= 0 and target.window_started_at is not None:
        earliest = max(earliest, target.window_started_at + WINDOW)
    return max(0.0, (earliest - now).total_seconds())


def message_for(target: NotificationTarget, rows: list[NotificationDelivery]) -> tuple[str, str]:
    """The title and body of one message: the row itself, or a digest of several."""
    if len(rows) == 1:
        return f"[AgentDesk] {rows[0].title}", rows[0].body
    lines = [f"{len(rows)} notifications for {target.team.name}, oldest first:", ""]
    for row in rows[:DIGEST_LINES]:
        lines.append(f"• {row.title}" + (f"\n  {row.link}" if row.link else ""))
    if len(rows) > DIGEST_LINES:
        inbox = settings.AGENTDESK_PUBLIC_URL.rstrip("/") + "/inbox/"
        lines.append(f"… and {len(rows) - DIGEST_LINES} more: {inbox}")
    return f"[AgentDesk] {len(rows)} notifications for {target.team.name}", "\n".join(lines)


def _send(target: NotificationTarget, rows: list[NotificationDelivery]) -> None:
    title, body = message_for(target, rows)
    severity = max((SEVERITY.get(r.event, "info") for r in rows), key=RANK.__getitem__)
    refused = False
    try:
        error = deliver(target.destination, title, body, severity)
    except callback_urls.RefusedURL as exc:  # the host is the problem: retrying won't help
        error, refused = f"Refused: {exc}", True
    except Exception as exc:  # a bug in a plugin must not leave the rows claimed forever
        error = scrub(f"{type(exc).__name__}: {exc}", target.destination)[:2000]
    now = timezone.now()
    _count_message(target, now)
    ids = [r.pk for r in rows]
    common: dict[str, Any] = {"attempts": F("attempts") + 1, "message_id": uuid.uuid4().hex,
                              "in_digest": len(rows) > 1}
    rows_now = NotificationDelivery.objects.filter(pk__in=ids)
    if not error:
        rows_now.update(status=NotificationDelivery.Status.DELIVERED, delivered_at=now,
                        next_attempt_at=None, last_error="", **common)
        return
    log.warning("notification to target %s (%s) failed: %d row(s)", target.pk, target.name,
                len(rows))
    for row in rows:
        attempts = row.attempts + 1
        gave_up = refused or attempts >= settings.WEBHOOK_MAX_ATTEMPTS
        NotificationDelivery.objects.filter(pk=row.pk).update(
            last_error=error, **common,
            status=NotificationDelivery.Status.FAILED if gave_up else row.status,
            next_attempt_at=None if gave_up else now + timedelta(
                seconds=backoff_seconds(attempts)))


# -- the safety net and admin --------------------------------------------------------------


def retry_due() -> int:
    """Celery beat: wake every target with a due pending row (its message may be lost)."""
    now = timezone.now()
    ids = set(NotificationDelivery.objects.filter(status=NotificationDelivery.Status.PENDING)
              .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
              .values_list("target_id", flat=True).distinct()[:1000])
    for target_id in ids:
        _wake(target_id)
    return len(ids)


def resend(delivery_ids: list[int]) -> int:
    """Admin: give failed (or pending) notifications another try now."""
    rows = NotificationDelivery.objects.filter(pk__in=delivery_ids).exclude(
        status=NotificationDelivery.Status.DELIVERED)
    targets = set(rows.values_list("target_id", flat=True))
    count = rows.update(status=NotificationDelivery.Status.PENDING,
                        next_attempt_at=timezone.now())
    for target_id in targets:
        _wake(target_id)
    return count


def _wake(target_id: int, countdown: float | None = None) -> None:
    try:
        enqueue.deliver_notifications(target_id, countdown=countdown)
    except Exception:  # the next periodic retry tries again
        log.exception("could not enqueue notifications of target %s", target_id)
