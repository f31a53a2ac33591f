"""Celery task entrypoints: parse the payload, call one handler, done.

Every task here is safe to run twice (invariant 3): drains dedupe on update ids, sends lock their outbox
row, sweeps only re-publish work that is still pending.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from core.clock import utcnow
from tasks import dead_letters as _dead_letters  # noqa: F401 - connects task_failure in every worker
from tasks import jobs, maintenance, metrics, runtime
from tasks.app import app
from tasks.handlers import TRANSIENT_ERRORS, apply_mailbox_entry
from tasks.names import (
    DRAIN_STALE_MAILBOXES,
    DRAIN_USER_MAILBOX,
    EXPIRE_ENDED_OFFERS,
    PUBLISH_GAUGES,
    PURGE_PROCESSED_EVENTS,
    RELEASE_EXPIRED_HOLDS,
    RESEND_PENDING_OUTBOX,
    SEND_OUTBOX_MESSAGE,
    SEND_PICKUP_REMINDERS,
)

log = structlog.get_logger(__name__)

# Outbox rows pending longer than this without a send task in sight are re-published by the sweep.
OUTBOX_RESEND_AFTER = timedelta(seconds=30)
MAILBOX_STALE_AFTER_SECONDS = 60.0


def publish_send(outbox_id: int) -> None:
    send_outbox_message.apply_async(args=[outbox_id])


@app.task(
    name=DRAIN_USER_MAILBOX,
    bind=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=30,
)
def drain_user_mailbox(self: Any, telegram_user_id: int) -> int:
    process = lambda raw, token: apply_mailbox_entry(  # noqa: E731 - a closure over this task's resources
        raw,
        token,
        uow_factory=runtime.uow_factory(),
        now=utcnow,
        publish_send=publish_send,
        publish_job=jobs.publish,
        admins=runtime.settings().admin_telegram_ids,
        record_count=lambda metric, labels: metrics.writer().incr(metric, labels),
    )
    result = runtime.mailbox().drain(telegram_user_id, process)
    if result.more:
        self.apply_async(args=[telegram_user_id])
    return result.processed


@app.task(name=SEND_OUTBOX_MESSAGE, bind=True, max_retries=None)
def send_outbox_message(self: Any, outbox_id: int) -> str:
    # Here, not at the top: it loads aiogram (~1 s), which only workers of the outbound queue need; they load
    # it at start (marketbot/cli.py), so this is a dictionary lookup by the time a send runs.
    from tasks.outbound import deliver_outbox_message

    outcome = deliver_outbox_message(
        outbox_id,
        uow_factory=runtime.uow_factory(),
        sender=runtime.sender(),
        now=utcnow,
        observe=metrics.outbound_result,
        retried=self.request.retries > 0,
    )
    if outcome.kind == "retry":
        # Back for the chat's next message when its wait ends (its send slot, Telegram's retry_after,
        # backoff on 5xx; at most 300 s); the row's not_before guards early runs. Not raised: under load this
        # is how most runs end, and Celery formats a traceback for each raised Retry (a fifth of the task's
        # time). Telegram's 429s and 5xx still count, in marketbot_outbound_messages_total. Unraised, the
        # retry sends no task_retry signal (tasks.metrics counts retries there), so it is counted here.
        self.retry(args=[outcome.retry_id or outbox_id], countdown=max(outcome.after, 0.01), throw=False)
        metrics.count_retry(self.name)
    return str(outcome.kind)


@app.task(name=RESEND_PENDING_OUTBOX)
def resend_pending_outbox() -> int:
    now = utcnow()
    with runtime.uow_factory()() as uow:
        ids = uow.outbox.pending_ids(older_than=now - OUTBOX_RESEND_AFTER, now=now)
    for outbox_id in ids:
        publish_send(outbox_id)
    if ids:
        log.info("outbox_resent", count=len(ids))
    return len(ids)


@app.task(name=DRAIN_STALE_MAILBOXES)
def drain_stale_mailboxes() -> int:
    users = runtime.mailbox().stale_users(MAILBOX_STALE_AFTER_SECONDS)
    for user_id in users:
        drain_user_mailbox.apply_async(args=[user_id])
    if users:
        log.info("stale_mailboxes_drained", count=len(users))
    return len(users)


def _publish(result: maintenance.SweepResult) -> int:
    for outbox_id in result.outbox_ids:
        publish_send(outbox_id)
    for job in result.jobs:
        jobs.publish(job)
    return result.count


@app.task(name=RELEASE_EXPIRED_HOLDS)
def release_expired_holds() -> int:
    return _publish(maintenance.release_expired_holds(runtime.uow_factory(), now=utcnow()))


@app.task(name=EXPIRE_ENDED_OFFERS)
def expire_ended_offers() -> int:
    return _publish(maintenance.expire_ended_offers(runtime.uow_factory(), now=utcnow()))


@app.task(name=SEND_PICKUP_REMINDERS)
def send_pickup_reminders() -> int:
    return _publish(maintenance.send_pickup_reminders(runtime.uow_factory(), now=utcnow()))


@app.task(name=PURGE_PROCESSED_EVENTS)
def purge_processed_events() -> int:
    return maintenance.purge_processed_events(runtime.uow_factory(), now=utcnow())


@app.task(name=PUBLISH_GAUGES)
def publish_gauges() -> int:
    gauges = metrics.compute_gauges(runtime.uow_factory(), now=utcnow())
    runtime.metrics().set_gauges(gauges)
    return len(gauges)
