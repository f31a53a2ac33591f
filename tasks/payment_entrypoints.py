"""Celery entrypoints of the payments queue: Checkout Sessions, Stripe events, closing sessions.

Each task parses its arguments and calls one handler in tasks.payment_flows. Transient failures (Stripe
unreachable, rate-limited or failing on its side; the database briefly away) retry with capped exponential
backoff and a bound, so a Stripe outage is ridden out without retrying forever.
"""

from __future__ import annotations

import uuid
from typing import Any

from core.clock import utcnow
from tasks import jobs, metrics, runtime
from tasks.app import app
from tasks.entrypoints import publish_send
from tasks.handlers import TRANSIENT_ERRORS
from tasks.names import CREATE_CHECKOUT, EXPIRE_CHECKOUT, PROCESS_STRIPE_EVENT, RECONCILE_PAYMENTS
from tasks.payment_flows import (
    PaymentDeps,
    StripeUnavailable,
    create_checkout,
    expire_checkout,
    process_event,
)
from tasks.reconcile import reconcile_payments

# Checkout: ~2 minutes of retries (2, 4, 8, 16, 32, 60 s) fit well inside a 15-minute hold; after that
# the buyer is better served by getting their units released and being told than by waiting.
CHECKOUT_MAX_RETRIES = 6
# Events: Stripe already has its 200, so an event we give up on waits for reconciliation; retry longer.
EVENT_MAX_RETRIES = 12
BACKOFF_CAP_SECONDS = 60


def _deps() -> PaymentDeps:
    settings = runtime.settings()
    return PaymentDeps(
        uow_factory=runtime.uow_factory(),
        stripe=runtime.payments(),
        now=utcnow,
        publish_send=publish_send,
        publish_job=jobs.publish,
        bot_username=settings.telegram_bot_username,
        public_base_url=settings.public_base_url,
        return_url=settings.checkout_return_url,
    )


def _backoff(retries: int) -> int:
    return int(min(2 ** (retries + 1), BACKOFF_CAP_SECONDS))


@app.task(name=CREATE_CHECKOUT, bind=True, autoretry_for=TRANSIENT_ERRORS, max_retries=CHECKOUT_MAX_RETRIES)
def create_checkout_task(self: Any, reservation_id: str) -> str:
    final = self.request.retries >= self.max_retries
    try:
        return create_checkout(uuid.UUID(reservation_id), _deps(), final_attempt=final)
    except StripeUnavailable as exc:
        raise self.retry(countdown=_backoff(self.request.retries), exc=exc) from exc


@app.task(name=PROCESS_STRIPE_EVENT, bind=True, autoretry_for=TRANSIENT_ERRORS, max_retries=EVENT_MAX_RETRIES)
def process_stripe_event_task(self: Any, event_id: str, event_type: str, session_id: str) -> str:
    try:
        outcome = process_event(event_id, event_type, session_id, _deps())
    except StripeUnavailable as exc:
        raise self.retry(countdown=_backoff(self.request.retries), exc=exc) from exc
    metrics.count("marketbot_payments_total", outcome=outcome)
    return outcome


@app.task(name=EXPIRE_CHECKOUT, bind=True, autoretry_for=TRANSIENT_ERRORS, max_retries=EVENT_MAX_RETRIES)
def expire_checkout_task(self: Any, session_id: str) -> None:
    try:
        expire_checkout(session_id, _deps())
    except StripeUnavailable as exc:
        raise self.retry(countdown=_backoff(self.request.retries), exc=exc) from exc


@app.task(name=RECONCILE_PAYMENTS)
def reconcile_payments_task() -> int:
    """Runs on the maintenance queue (by its name); lives here because it needs the payments' dependencies."""
    result = reconcile_payments(_deps(), now=utcnow())
    return result.checkouts_republished + len(result.sessions_applied) + result.refunds_republished
