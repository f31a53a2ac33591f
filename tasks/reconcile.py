"""Reconciliation: find what a lost webhook or a lost task left unfinished, and finish it the normal way.

Three things can be lost between our commit and the next step (a publish that never reached the broker, a
worker killed before acking, a Stripe webhook that never arrived):

- a hold whose Checkout Session was never created  → publish CREATE_CHECKOUT again (Stripe's idempotency
  key `checkout-<reservation id>` returns the same session if it was created after all);
- a Checkout Session that completed or expired without our webhook, or whose delayed payment (a bank debit)
  failed without it → re-read it (and, paid by a delayed method, its PaymentIntent) from Stripe and apply it
  through `payment_flows.process_event`, exactly as if the webhook had come;
- a refund requested but never executed → publish EXECUTE_REFUND again (keyed by the payment);
- a session still open although its hold was released (the job closing it was lost) → EXPIRE_CHECKOUT.

Each check is batch-bounded and uses `FOR UPDATE SKIP LOCKED` while claiming rows, so two overlapping runs
split the work. Claimed payments get `updated_at = now`, so each open session is asked about at most once
per RECHECK_AFTER, and each delayed payment still processing once per PROCESSING_RECHECK_AFTER, however
many there are (Stripe's API rate limit stays far away).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import stripe
import structlog
from sqlalchemy import text

from core import purchase
from tasks.jobs import Job
from tasks.names import CREATE_CHECKOUT, EXECUTE_REFUND, EXPIRE_CHECKOUT
from tasks.payment_flows import (
    PaymentDeps,
    SessionSnapshot,
    StripeUnavailable,
    intent_status_of,
    process_event,
)

log = structlog.get_logger(__name__)

RECHECK_AFTER = timedelta(minutes=2)  # a session's webhook normally arrives within seconds
# A delayed method (a bank debit) settles within days and its own webhook says how; asking Stripe about
# each one every two minutes all that time would spend its API rate on nothing.
PROCESSING_RECHECK_AFTER = timedelta(minutes=30)
CHECKOUT_LOST_AFTER = timedelta(minutes=1)  # the checkout task normally runs within a second of the hold
REFUND_LOST_AFTER = timedelta(minutes=10)  # longer than the refund task's own retries keep it busy
BATCH = 100

_HOLDS_WITHOUT_SESSION = text(
    """
    SELECT r.id FROM reservations r
    WHERE r.status = 'held' AND r.expires_at > :now AND r.created_at <= :cutoff
      AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.reservation_id = r.id)
    ORDER BY r.created_at
    LIMIT :batch
    """
)

_CLAIM_OPEN_SESSIONS = text(
    """
    WITH due AS (
        SELECT id FROM payments
        WHERE (status = 'open' AND updated_at <= :cutoff)
           OR (status = 'processing' AND updated_at <= :processing_cutoff)
        ORDER BY updated_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    UPDATE payments p SET updated_at = :now FROM due WHERE p.id = due.id
    RETURNING p.stripe_checkout_session_id,
              (SELECT r.status = 'held' FROM reservations r WHERE r.id = p.reservation_id) AS still_held
    """
)

_STUCK_REFUNDS = text(
    """
    WITH due AS (
        SELECT id FROM refunds
        WHERE status = 'requested' AND updated_at <= :cutoff
        ORDER BY created_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    UPDATE refunds r SET updated_at = :now FROM due WHERE r.id = due.id
    RETURNING r.id
    """
)

# What the session's state means for our payment (core.purchase.session_outcome) → the event that stands for
# it; "processing" and "none" have nothing to apply.
_EVENT_FOR_OUTCOME: dict[purchase.Outcome, str] = {
    "paid": "checkout.session.completed",
    "expired": "checkout.session.expired",
    "failed": "checkout.session.async_payment_failed",
}


@dataclass
class Reconciled:
    checkouts_republished: int = 0
    sessions_checked: int = 0
    sessions_applied: list[str] = field(default_factory=list)
    refunds_republished: int = 0


def reconcile_payments(deps: PaymentDeps, *, now: datetime, batch: int = BATCH) -> Reconciled:
    result = Reconciled()
    with deps.uow_factory() as uow:
        holds = [
            row[0]
            for row in uow.session.execute(
                _HOLDS_WITHOUT_SESSION, {"now": now, "cutoff": now - CHECKOUT_LOST_AFTER, "batch": batch}
            )
        ]
        sessions = [
            (str(row[0]), bool(row[1]))
            for row in uow.session.execute(
                _CLAIM_OPEN_SESSIONS,
                {
                    "now": now,
                    "cutoff": now - RECHECK_AFTER,
                    "processing_cutoff": now - PROCESSING_RECHECK_AFTER,
                    "batch": batch,
                },
            )
        ]
        refunds = [
            int(row[0])
            for row in uow.session.execute(
                _STUCK_REFUNDS, {"now": now, "cutoff": now - REFUND_LOST_AFTER, "batch": batch}
            )
        ]
        uow.commit()
    for reservation_id in holds:
        deps.publish_job(Job(CREATE_CHECKOUT, (str(reservation_id),)))
    result.checkouts_republished = len(holds)
    for refund_id in refunds:
        deps.publish_job(Job(EXECUTE_REFUND, (refund_id,)))
    result.refunds_republished = len(refunds)
    for session_id, still_held in sessions:
        result.sessions_checked += 1
        applied = _reconcile_session(session_id, still_held, deps)
        if applied is not None:
            result.sessions_applied.append(applied)
    if holds or refunds or result.sessions_applied:
        log.warning(
            "payments_reconciled",
            checkouts_republished=len(holds),
            refunds_republished=len(refunds),
            sessions_applied=len(result.sessions_applied),
        )
    return result


def _reconcile_session(session_id: str, still_held: bool, deps: PaymentDeps) -> str | None:
    """Apply a finished session whose webhook we never processed; None when there is nothing to apply."""
    try:
        session = deps.stripe.retrieve_checkout(session_id)
    except stripe.StripeError as exc:
        # Next run asks again; one unreachable session must not stop the others.
        log.warning("reconcile_session_unavailable", session_id=session_id, error=type(exc).__name__)
        return None
    snapshot = SessionSnapshot.of(session)
    try:
        # Asks Stripe only for a session paid by a delayed method (a bank debit): processing, or failed.
        intent_status = intent_status_of(snapshot, deps)
    except (StripeUnavailable, stripe.StripeError) as exc:
        log.warning("reconcile_session_unavailable", session_id=session_id, error=type(exc).__name__)
        return None
    # The state read by the same rule the webhook path applies; no event type of its own to go on.
    state = purchase.session_outcome("", snapshot.status, snapshot.payment_status, intent_status)
    event_type = _EVENT_FOR_OUTCOME.get(state)
    if event_type is None:
        if session.status == "open" and not still_held:
            # Its hold is gone but the job that closes the session was lost: close it now, so nobody pays
            # for units that are no longer theirs (the payment path would refund them, a detour).
            deps.publish_job(Job(EXPIRE_CHECKOUT, (session_id,)))
            return "expire_requested"
        return None  # still open (or waiting for a delayed method): its own events will come
    # A stable id per state: applying the same state twice is claimed once (and harmless anyway).
    event_id = f"reconcile:{session_id}:{event_type}"
    try:
        outcome = process_event(event_id, event_type, session_id, deps)
    except StripeUnavailable as exc:
        log.warning("reconcile_session_unavailable", session_id=session_id, error=str(exc))
        return None
    if outcome == "duplicate":
        return None
    log.warning("reconcile_applied_missing_webhook", session_id=session_id, event_type=event_type)
    return outcome
