"""Webhooks: a run's receiver hears when it waits for a human or ends.

Events ``run.waiting_human``, ``run.succeeded``, ``run.failed`` and ``run.aborted`` are
POSTed as JSON ``{"event", "run", "sent_at"}`` to the run's ``callback_url`` (else its
team's). The delivery row is written in the *same transaction* as the status change (an
outbox), so no event is lost to a crash between the two; the first attempt is enqueued
after commit, failures are retried with exponential backoff, and a periodic task picks up
due deliveries whose retry message was lost, so a receiver that is down for hours gets
everything once it is back. After ``WEBHOOK_MAX_ATTEMPTS`` a delivery is ``failed`` (admin
shows it, and can send it again). In production a callback host that resolves to a
loopback, private, link-local or otherwise non-public address is refused when the run is
submitted and again at each delivery, which then fails at once, not retried; requests go
to the address checked, never to a second DNS answer (``runs.callback_urls``).

Each request is signed, always: ``X-AgentDesk-Timestamp: <unix seconds>`` and
``X-AgentDesk-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the team's
webhook_secret>``. Every team has a secret from its creation (shown in full once, in admin).
Rotating it (:func:`rotate_secret`, an admin action) keeps the previous secret signing for
``WEBHOOK_SECRET_GRACE_SECONDS``: meanwhile the header lists both signatures, comma-separated
(``sha256=<new>, sha256=<old>``), so a receiver still on the old secret loses nothing.
Receivers check with :func:`verify_signature`, which accepts a header where any entry
matches and rejects timestamps outside a replay window. A team without a secret (only a
hand-edited row could be) gets no unsigned delivery: the attempt fails and is retried.
``X-AgentDesk-Delivery`` (stable across retries) lets a receiver drop duplicates: delivery
is at least once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from agentdesk.runtime.outcomes import RunStatus

from . import audit, callback_urls, enqueue
from .models import Run, Team, WebhookDelivery
from .models.teams import new_webhook_secret
from .representations import run_out

log = logging.getLogger(__name__)

EVENTS = {
    RunStatus.WAITING_HUMAN: "run.waiting_human",
    RunStatus.SUCCEEDED: "run.succeeded",
    RunStatus.FAILED: "run.failed",
    RunStatus.ABORTED: "run.aborted",
}
SIGNATURE_HEADER = "X-AgentDesk-Signature"
TIMESTAMP_HEADER = "X-AgentDesk-Timestamp"
# An attempt claims its delivery for this long, so two workers never send it at once.
CLAIM_SECONDS = 60


def sign(secret: str, timestamp: str | int, body: bytes | str) -> str:
    """``sha256=<hex>`` of ``"<timestamp>.<body>"`` keyed with ``secret``."""
    raw = body.encode() if isinstance(body, str) else body
    message = str(timestamp).encode() + b"." + raw
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str, timestamp: str | int, body: bytes | str, signature: str,
    tolerance_s: float = 300, now: float | None = None,
) -> bool:
    """True when ``signature`` signs ``body`` at ``timestamp`` with ``secret`` and the
    timestamp is within ``tolerance_s`` of now (older or future messages are replays).
    During a secret rotation the header lists several comma-separated ``sha256=`` entries:
    one matching ``secret`` is enough, so receivers on the old or the new secret both pass.

    Use the raw request body as received, before any JSON parsing::

        ok = verify_signature(secret, request.headers["X-AgentDesk-Timestamp"],
                              request.body, request.headers["X-AgentDesk-Signature"])
    """
    try:
        sent = int(str(timestamp))
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_s or not secret or not signature:
        return False
    expected = sign(secret, sent, body)
    # During a rotation the header carries one signature per valid secret: any may match.
    return any(hmac.compare_digest(expected, entry.strip()) for entry in signature.split(","))


def signing_secrets(team: Team, now: datetime | None = None) -> list[str]:
    """The secrets a delivery is signed with: the team's, then the previous one while the
    grace period after a rotation lasts."""
    keys = [team.webhook_secret] if team.webhook_secret else []
    rotated = team.webhook_secret_rotated_at
    grace = timedelta(seconds=settings.WEBHOOK_SECRET_GRACE_SECONDS)
    if (team.webhook_secret_previous and rotated is not None
            and (now or timezone.now()) < rotated + grace):
        keys.append(team.webhook_secret_previous)
    return keys


def signature_header(team: Team, timestamp: str | int, body: bytes) -> str:
    """``X-AgentDesk-Signature``: one ``sha256=`` entry per signing secret ("" if none)."""
    return ", ".join(sign(secret, timestamp, body) for secret in signing_secrets(team))


def masked(secret: str) -> str:
    """How a secret is shown after its creation: enough to tell two apart, not to sign."""
    return f"{secret[:6]}…{secret[-4:]}" if len(secret) > 16 else ("(set)" if secret else "")


def rotate_secret(team_id: int, *, actor=None) -> str:
    """Give the team a new secret; the old one keeps signing for the grace period. Returns
    the new secret, which the caller shows once: it is not shown in full again. Audited."""
    secret = new_webhook_secret()
    with transaction.atomic():
        team = Team.objects.select_for_update().get(pk=team_id)
        team.webhook_secret_previous = team.webhook_secret
        team.webhook_secret = secret
        team.webhook_secret_rotated_at = timezone.now()
        team.save(update_fields=["webhook_secret", "webhook_secret_previous",
                                 "webhook_secret_rotated_at"])
        audit.record(team_id=team.pk, action="team.webhook_secret_rotated", target=team,
                     actor=actor, detail={"secret": masked(secret),
                                          "previous_valid_seconds":
                                          settings.WEBHOOK_SECRET_GRACE_SECONDS})
    return secret


def record_status_change(run: Run) -> WebhookDelivery | None:
    """Inside the transaction that changed ``run.status``: queue the event, if any.

    Idempotent per (run, event, step count), so calling it twice for one change is harmless.
    """
    event = EVENTS.get(RunStatus(run.status)) if run.status else None
    url = (run.callback_url or run.team.callback_url) if event else ""
    if not url:
        return None
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                run=run, event=event, seq=run.step_count, url=url,
                payload=run_out(run), next_attempt_at=timezone.now(),
            )
    except IntegrityError:
        return None
    transaction.on_commit(lambda: _enqueue(delivery.pk))
    return delivery


def backoff_seconds(attempts: int) -> float:
    base = settings.WEBHOOK_BACKOFF_BASE_SECONDS
    return min(base * 2 ** max(0, attempts - 1), settings.WEBHOOK_BACKOFF_MAX_SECONDS)


def attempt(delivery_id: int) -> float | None:
    """Send a due delivery once. Returns seconds until its next try, or None when it is
    delivered, failed for good, not due, or being sent by someone else."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        Q(next_attempt_at=None) | Q(next_attempt_at__lte=now),
        pk=delivery_id, status=WebhookDelivery.Status.PENDING,
    ).update(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("run__team").get(pk=delivery_id)
    refused = False
    try:
        code, error = _post(delivery)
    except callback_urls.RefusedURL as exc:  # the address is the problem: retrying won't help
        code, error, refused = None, f"Refused: {exc}", True
    attempts = delivery.attempts + 1
    fields: dict[str, Any] = {"attempts": attempts, "last_status_code": code,
                              "last_error": error[:2000]}
    retry_in = None
    if code is not None and 200 <= code < 300:
        fields.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=timezone.now(),
                      next_attempt_at=None, last_error="")
    elif refused:
        fields.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
        log.warning("webhook %s to %s refused: %s", delivery.event, delivery.url, error)
    elif attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        fields.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
        log.warning("webhook %s to %s failed for good after %d attempts: %s",
                    delivery.event, delivery.url, attempts, error or code)
    else:
        retry_in = backoff_seconds(attempts)
        fields["next_attempt_at"] = timezone.now() + timedelta(seconds=retry_in)
    WebhookDelivery.objects.filter(pk=delivery_id).update(**fields)
    return retry_in


def _post(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """POST the delivery to its URL's host, resolved once and checked (``callback_urls``):
    to each of its addresses in turn until one accepts the connection. Returns the status
    code (None when no answer) and an error text; raises RefusedURL for a refused host."""
    try:
        targets = callback_urls.destinations(delivery.url)
    except OSError as exc:  # the name did not resolve: like a refused connection, retried
        return None, f"DNS lookup failed: {exc}"
    timestamp = str(int(time.time()))
    body = json.dumps(
        {"event": delivery.event, "run": delivery.payload,
         "sent_at": timezone.now().isoformat()},
        separators=(",", ":"),
    ).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "AgentDesk-Webhooks/1",
               TIMESTAMP_HEADER: timestamp, "X-AgentDesk-Event": delivery.event,
               "X-AgentDesk-Delivery": str(delivery.pk)}
    signature = signature_header(delivery.run.team, timestamp, body)
    if not signature:  # never unsigned: retried until the team has a secret again
        return None, "the team has no webhook secret: rotate it in admin (Teams)"
    headers[SIGNATURE_HEADER] = signature
    timeout = httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS,
                            connect=min(2.0, settings.WEBHOOK_TIMEOUT_SECONDS))
    error = ""
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for target in targets:
            try:
                response = client.post(target.url, content=body,
                                       headers={**headers, **target.headers},
                                       extensions=target.extensions)
            except httpx.ConnectError as exc:  # this address refused: try the next one
                error = f"{type(exc).__name__}: {exc}"
                continue
            except httpx.HTTPError as exc:
                return None, f"{type(exc).__name__}: {exc}"
            return response.status_code, "" if response.is_success else response.text[:500]
    return None, error


def due_deliveries(limit: int = 500) -> list[int]:
    now = timezone.now()
    return list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
        .filter(Q(next_attempt_at=None) | Q(next_attempt_at__lte=now))
        .order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )


def retry_due() -> int:
    """The periodic safety net: enqueue every pending delivery that is due."""
    ids = due_deliveries()
    for delivery_id in ids:
        _enqueue(delivery_id)
    return len(ids)


def resend(delivery_ids: list[int]) -> int:
    """Admin: give failed (or pending) deliveries another try now."""
    count = WebhookDelivery.objects.filter(pk__in=delivery_ids).exclude(
        status=WebhookDelivery.Status.DELIVERED
    ).update(status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now())
    for delivery_id in delivery_ids:
        _enqueue(delivery_id)
    return count


def _enqueue(delivery_id: int, countdown: float | None = None) -> None:
    try:
        enqueue.deliver_webhook(delivery_id, countdown=countdown)
    except Exception:  # the periodic retry picks it up; never fail the caller's write
        log.exception("could not enqueue webhook delivery %s", delivery_id)
