"""Celery tasks: thin wrappers taking ids; the work lives in ``runs.execution``,
``runs.maintenance``, ``runs.webhooks`` and ``runs.notifier``; follow-up messages go out through
``runs.enqueue`` like every other enqueue (names pinned there)."""

from __future__ import annotations

from celery import shared_task

from . import enqueue, execution, maintenance, notifier, webhooks


@shared_task(name=enqueue.ADVANCE_RUN, acks_late=True, reject_on_worker_lost=True,
             ignore_result=True)
def advance_run(run_id: int) -> None:
    if execution.advance(run_id) == execution.MORE_WORK:
        enqueue.advance_run(run_id)


@shared_task(ignore_result=True)
def reap_runs() -> int:
    return maintenance.reap_runs()


@shared_task(ignore_result=True)
def expire_escalations() -> int:
    return maintenance.expire_escalations()


@shared_task(name=enqueue.DELIVER_WEBHOOK, acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: int) -> None:
    retry_in = webhooks.attempt(delivery_id)
    if retry_in is not None:
        enqueue.deliver_webhook(delivery_id, countdown=retry_in)


@shared_task(ignore_result=True)
def retry_webhooks() -> int:
    return webhooks.retry_due()


@shared_task(name=enqueue.DELIVER_NOTIFICATIONS, acks_late=True, ignore_result=True)
def deliver_notifications(target_id: int) -> None:
    again_in = notifier.send_due(target_id)
    if again_in is not None:
        enqueue.deliver_notifications(target_id, countdown=again_in)


@shared_task(ignore_result=True)
def notify_thresholds() -> int:
    return maintenance.notify_thresholds()


@shared_task(ignore_result=True)
def retry_notifications() -> int:
    return notifier.retry_due()
