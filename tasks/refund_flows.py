"""Executing a requested refund through Stripe (the EXECUTE_REFUND task on the payments queue).

Every refund decision (customer cancel, offer cancel, payment after the hold was released) writes a
`refunds` row in its own transaction (tasks.refunds.request_refund) and publishes this task after commit.
Here:

1. Read the refund; a succeeded one is done (a redelivered or duplicated task is a no-op), a failed one
   waits for an operator.
2. Call Stripe outside any transaction (a slow Stripe must not hold row locks), with the refund's own
   idempotency key: a retry, a redelivery or a concurrent duplicate gets the same Stripe refund back.
3. Record the outcome in one transaction with the refund row locked FOR UPDATE, so two concurrent runs
   record it once: refund → succeeded, payment → refunded, the order → refunded (a cancelled order stays
   cancelled; see tasks.order_flows), and the buyer's "refund sent" message into the outbox, keyed by the
   refund id so it is written once. The send is published after the commit.

Transient Stripe errors (network, rate limit, 5xx) count an attempt and retry with exponential backoff, at
most MAX_ATTEMPTS times; permanent ones (an unknown or already refunded PaymentIntent) mark the refund
failed with an ERROR log line naming the refund id, and the buyer is not told anything went through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import stripe
import structlog

from core.clock import Clock
from core.i18n import resolve_language, t
from core.messages import Reply
from core.money import Money
from core.ports import RefundGateway
from db.models import Payment
from db.uow import SqlAlchemyUnitOfWork
from marketbot.logs import current_correlation_id
from tasks.adapters.stripe_payments import is_transient

log = structlog.get_logger(__name__)

# 8 tries with waits of 2, 4, …, 128 s: about four minutes of Stripe trouble is ridden out; past that an
# operator should look instead of the task hammering a broken integration forever.
MAX_ATTEMPTS = 8
MAX_BACKOFF_SECONDS = 300.0
_ERROR_CHARS = 500

RefundOutcomeKind = Literal["succeeded", "already_succeeded", "retry", "failed", "not_found"]


@dataclass(frozen=True)
class RefundOutcome:
    kind: RefundOutcomeKind
    outbox_ids: tuple[int, ...] = ()  # publish these sends (the outbox rows are committed)
    retry_after: float = 0.0  # seconds, for kind == "retry"


@dataclass(frozen=True)
class _Request:
    idempotency_key: str
    payment_intent_id: str | None
    checkout_session_id: str


class _PermanentFailure(Exception):
    """Stripe will never accept this refund as asked; an operator must look."""


def execute_refund(
    refund_id: int,
    *,
    uow_factory: Callable[[], SqlAlchemyUnitOfWork],
    payments: RefundGateway,
    now: Clock,
) -> RefundOutcome:
    """Refund a payment through Stripe and record it; safe to run any number of times, also concurrently."""
    request = _load(refund_id, uow_factory)
    if isinstance(request, RefundOutcome):
        return request
    try:
        intent = request.payment_intent_id or _payment_intent_of(
            payments.retrieve_checkout(request.checkout_session_id)
        )
        stripe_refund_id = payments.refund(payment_intent_id=intent, idempotency_key=request.idempotency_key)
    except stripe.StripeError as exc:
        if is_transient(exc):
            return _retry_later(refund_id, _describe(exc), uow_factory, now())
        return _fail(refund_id, _describe(exc), uow_factory, now())
    except _PermanentFailure as exc:
        return _fail(refund_id, str(exc), uow_factory, now())
    return _record_success(refund_id, stripe_refund_id, intent, uow_factory, now())


def _load(refund_id: int, uow_factory: Callable[[], SqlAlchemyUnitOfWork]) -> _Request | RefundOutcome:
    with uow_factory() as uow:
        refund = uow.refunds.get(refund_id)
        if refund is None:
            log.error("refund_not_found", refund_id=refund_id)
            return RefundOutcome("not_found")
        if refund.status == "succeeded":
            log.info("refund_already_succeeded", refund_id=refund_id)
            return RefundOutcome("already_succeeded")
        if refund.status == "failed":
            # Failed for good earlier (or out of attempts): only an operator re-queues it, after looking.
            log.warning("refund_failed_earlier", refund_id=refund_id)
            return RefundOutcome("failed")
        payment = uow.session.get(Payment, refund.payment_id)
        assert payment is not None  # FK
        return _Request(
            refund.idempotency_key, payment.stripe_payment_intent_id, payment.stripe_checkout_session_id
        )


def _payment_intent_of(session: Any) -> str:
    """The PaymentIntent id of a Checkout Session (an id, or an expanded object)."""
    intent = getattr(session, "payment_intent", None)
    if intent is not None and not isinstance(intent, str):
        intent = getattr(intent, "id", None)
    if not intent:
        raise _PermanentFailure(f"checkout session {getattr(session, 'id', '?')} has no payment_intent")
    return str(intent)


def _describe(exc: stripe.StripeError) -> str:
    code = getattr(exc, "code", None)
    return f"{type(exc).__name__}({exc.http_status}, {code}): {exc.user_message or exc}"[:_ERROR_CHARS]


def _record_success(
    refund_id: int,
    stripe_refund_id: str,
    payment_intent_id: str,
    uow_factory: Callable[[], SqlAlchemyUnitOfWork],
    now: datetime,
) -> RefundOutcome:
    with uow_factory() as uow:
        refund = uow.refunds.get(refund_id, for_update=True)
        assert refund is not None  # refunds are never deleted
        if refund.status == "succeeded":  # a concurrent run recorded the same Stripe refund first
            return RefundOutcome("already_succeeded")
        payment = uow.session.get(Payment, refund.payment_id, with_for_update=True, populate_existing=True)
        assert payment is not None  # FK
        refund.status = "succeeded"
        refund.stripe_refund_id = stripe_refund_id
        refund.succeeded_at = now
        refund.updated_at = now
        if payment.stripe_payment_intent_id is None:
            payment.stripe_payment_intent_id = payment_intent_id
        payment.status = "refunded"
        payment.refunded_minor = refund.amount_minor
        payment.updated_at = now
        order_id = refund.order_id or payment.order_id
        if order_id is not None:
            uow.orders.mark_refunded(order_id, now=now)
        uow.audit.add(
            actor_telegram_user_id=None,
            action="refund.succeeded",
            subject_type="refund",
            subject_id=str(refund.id),
            reason=refund.reason,
            details={"payment_id": payment.id, "stripe_refund_id": stripe_refund_id},
            now=now,
        )
        outbox_id = _tell_buyer(uow, refund.id, payment, Money(refund.amount_minor, refund.currency), now)
        uow.commit()
    log.info("refund_succeeded", refund_id=refund_id)
    return RefundOutcome("succeeded", outbox_ids=(outbox_id,) if outbox_id is not None else ())


def _tell_buyer(
    uow: SqlAlchemyUnitOfWork, refund_id: int, payment: Payment, amount: Money, now: datetime
) -> int | None:
    found = uow.orders.buyer_of_reservation(payment.reservation_id)
    if found is None:  # pragma: no cover - a payment always belongs to a buyer's reservation
        return None
    buyer, title = found
    chat_id = buyer.chat_id or buyer.telegram_user_id
    reply = Reply(
        chat_id, t("refund.sent", resolve_language(buyer.language_code), total=amount.display(), title=title)
    )
    method, payload = reply.to_bot_api()
    return uow.outbox.add(
        # From the refund id: a repeated or concurrent run cannot tell the buyer twice.
        dedup_key=f"refund-succeeded:{refund_id}",
        chat_id=chat_id,
        method=method,
        payload=payload,
        now=now,
        correlation_id=current_correlation_id(),
    )


def _retry_later(
    refund_id: int, error: str, uow_factory: Callable[[], SqlAlchemyUnitOfWork], now: datetime
) -> RefundOutcome:
    with uow_factory() as uow:
        refund = uow.refunds.get(refund_id, for_update=True)
        assert refund is not None
        if refund.status != "requested":  # a concurrent run finished it meanwhile
            return RefundOutcome("already_succeeded" if refund.status == "succeeded" else "failed")
        refund.attempts += 1
        refund.last_error = error
        refund.updated_at = now
        attempts = refund.attempts
        if attempts >= MAX_ATTEMPTS:
            refund.status = "failed"
            _audit_failure(uow, refund_id, error, now)
        uow.commit()
    if attempts >= MAX_ATTEMPTS:
        log.error("refund_failed", refund_id=refund_id, attempts=attempts, error=error, transient=True)
        return RefundOutcome("failed")
    delay = min(2.0**attempts, MAX_BACKOFF_SECONDS)
    log.warning("refund_retry", refund_id=refund_id, attempts=attempts, retry_after=delay, error=error)
    return RefundOutcome("retry", retry_after=delay)


def _fail(
    refund_id: int, error: str, uow_factory: Callable[[], SqlAlchemyUnitOfWork], now: datetime
) -> RefundOutcome:
    with uow_factory() as uow:
        refund = uow.refunds.get(refund_id, for_update=True)
        assert refund is not None
        if refund.status == "succeeded":  # a concurrent run got Stripe's success: that stands
            return RefundOutcome("already_succeeded")
        refund.status = "failed"
        refund.attempts += 1
        refund.last_error = error
        refund.updated_at = now
        _audit_failure(uow, refund_id, error, now)
        uow.commit()
    # Operators list failed refunds (status = 'failed') and settle them by hand; this line is their alert.
    log.error("refund_failed", refund_id=refund_id, error=error, transient=False)
    return RefundOutcome("failed")


def _audit_failure(uow: SqlAlchemyUnitOfWork, refund_id: int, error: str, now: datetime) -> None:
    uow.audit.add(
        actor_telegram_user_id=None,
        action="refund.failed",
        subject_type="refund",
        subject_id=str(refund_id),
        details={"error": error},
        now=now,
    )
