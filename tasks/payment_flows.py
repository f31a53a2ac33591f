"""The payments queue's use cases: create a hold's Checkout Session, apply Stripe's events, close sessions.

Network calls to Stripe happen outside database transactions (a slow Stripe must not hold row locks); the
effects are then applied in one short transaction that also writes the messages (outbox) and records what
to publish after the commit. Each use case is safe to run twice (invariant 3):

- the Checkout Session's idempotency key derives from the reservation id and every retry sends the same
  parameters, so Stripe answers with the first session; its payment row and Pay message are keyed too;
- a Stripe event is claimed by id in the transaction that applies it, so a crash before the commit leaves
  it unclaimed for the redelivery, and a repeat finds it claimed;
- what an event does is decided from the session as Stripe has it *now* (re-read, never the payload), and
  from our rows' states, so events arriving late, twice or out of order converge on one order or one refund.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import stripe
import structlog

from core import purchase
from core.i18n import resolve_language
from core.messages import Reply
from core.money import Money
from core.pickup import display_code, generate_pickup_code, pickup_qr_data
from db.models import Payment, Reservation
from db.payment_repositories import HoldDetails, NewCheckout
from db.uow import SqlAlchemyUnitOfWork
from marketbot.logs import current_correlation_id
from tasks.adapters.stripe_payments import CheckoutLine, CheckoutSession, StripePayments, is_transient
from tasks.jobs import Job
from tasks.names import EXPIRE_CHECKOUT
from tasks.refunds import request_refund

log = structlog.get_logger(__name__)

STRIPE_EVENT_SOURCE = "stripe_event"
HANDLED_EVENT_TYPES = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    }
)


class StripeUnavailable(Exception):
    """Stripe could not be reached, failed on its side or asked us to slow down: retry with backoff."""


@dataclass(frozen=True)
class PaymentDeps:
    """What the payments use cases need from the process (built by tasks.payment_entrypoints)."""

    uow_factory: Callable[[], SqlAlchemyUnitOfWork]
    stripe: StripePayments
    now: Callable[[], datetime]
    publish_send: Callable[[int], None]
    publish_job: Callable[[Job], None]
    bot_username: str | None = None
    public_base_url: str | None = None
    return_url: str | None = None  # CHECKOUT_RETURN_URL


@dataclass
class _Effects:
    """Messages to store (dedup key, reply) and jobs to publish after the commit."""

    replies: list[tuple[str, Reply]] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)


def view_of(details: HoldDetails, *, message_id: int | None = None) -> purchase.PurchaseView:
    """The buyer's view of a hold; `message_id` defaults to the card that showed the Buy button."""
    return purchase.PurchaseView(
        chat_id=details.buyer_chat_id,
        lang=resolve_language(details.buyer_language),
        items=tuple((item.name, item.quantity) for item in details.items),
        total=Money(details.total_minor, details.currency),
        offer_id=details.offer_id,
        offer_title=details.offer_title,
        business=details.business_name,
        venue=details.venue_name,
        address=details.venue_address,
        timezone=details.timezone,
        pickup_start=details.pickup_start,
        pickup_end=details.pickup_end,
        message_id=message_id if message_id is not None else details.chat_message_id,
        photo_file_id=details.photo_file_id,
    )


def _commit_and_publish(
    uow: SqlAlchemyUnitOfWork, effects: _Effects, deps: PaymentDeps, now: datetime
) -> None:
    ids: list[int] = []
    for key, reply in effects.replies:
        method, payload = reply.to_bot_api()
        outbox_id = uow.outbox.add(
            dedup_key=key,
            chat_id=reply.chat_id,
            method=method,
            payload=payload,
            now=now,
            correlation_id=current_correlation_id(),
        )
        if outbox_id is not None:
            ids.append(outbox_id)
    uow.commit()
    # Publish after commit: a send or a job must find the rows it reads (tasks.jobs).
    for outbox_id in ids:
        deps.publish_send(outbox_id)
    for job in effects.jobs:
        deps.publish_job(job)


# -- the Checkout Session -----------------------------------------------------------------------------------


def create_checkout(reservation_id: uuid.UUID, deps: PaymentDeps, *, final_attempt: bool) -> str:
    """Create (or find again) the hold's Checkout Session and show the buyer its Pay button.

    Raises StripeUnavailable for a transient Stripe failure unless this is the final attempt; when Stripe
    refuses the request, or the last attempt fails, the hold is released and the buyer told.
    """
    now = deps.now()
    with deps.uow_factory() as uow:
        details = uow.payments.details(reservation_id)
        if details is None or details.status != "held" or details.expires_at <= now:
            log.info("checkout_skipped_not_held", reservation_id=str(reservation_id))
            return "not_held"
        stored = uow.payments.payment_of(reservation_id)
        known = (
            CheckoutSession(stored.stripe_checkout_session_id, stored.checkout_url, stored.expires_at)
            if stored is not None and stored.checkout_url and stored.expires_at is not None
            else None
        )
    try:
        session = known or _create_session(details, deps)
    except stripe.StripeError as exc:
        if is_transient(exc) and not final_attempt:
            log.warning(
                "checkout_stripe_unavailable", reservation_id=str(reservation_id), error=type(exc).__name__
            )
            raise StripeUnavailable(type(exc).__name__) from exc
        log.error(
            "checkout_failed", reservation_id=str(reservation_id), error=type(exc).__name__, exc_info=True
        )
        _give_up(reservation_id, deps)
        return "failed"
    with deps.uow_factory() as uow:
        reservation = uow.payments.lock_reservation(reservation_id)
        assert reservation is not None  # it existed above and reservations are never deleted
        checkout = NewCheckout(
            session.id, details.total_minor, details.currency, session.url, session.expires_at
        )
        payment = uow.payments.record_checkout(reservation_id, checkout, now)
        effects = _Effects()
        if reservation.status == "held" and reservation.expires_at > now and payment.status == "open":
            pay = purchase.pay_button(
                view_of(details),
                url=session.url,
                expires_at=details.expires_at,
                reservation_hex=reservation_id.hex,
            )
            effects.replies.append((f"checkout:{reservation_id}:pay", pay))
        elif payment.status == "open":
            # The hold ended while we were at Stripe (released, lapsed): nobody saw this session, close it.
            effects.jobs.append(Job(EXPIRE_CHECKOUT, (session.id,)))
        _commit_and_publish(uow, effects, deps, now)
    log.info("checkout_ready", reservation_id=str(reservation_id))
    return "created"


def _create_session(details: HoldDetails, deps: PaymentDeps) -> CheckoutSession:
    back = purchase.return_url(deps.bot_username, deps.public_base_url, deps.return_url)
    return deps.stripe.create_checkout(
        reservation_id=details.reservation_id,
        currency=details.currency,
        lines=[
            CheckoutLine(
                item.name, purchase.stripe_unit_amount(item.unit_price_minor, details.currency), item.quantity
            )
            for item in details.items
        ],
        hold_expires_at=details.expires_at,
        # The hold's end, not the clock: every retry must send identical parameters, or Stripe refuses the
        # reused idempotency key. The session then lives until at least 31 minutes after the hold's end
        # (Stripe's 30-minute floor) and is expired as soon as the hold is released.
        now=details.expires_at,
        success_url=back,
        cancel_url=back,
        metadata={"offer_id": str(details.offer_id), "user_id": str(details.user_id)},
    )


def _give_up(reservation_id: uuid.UUID, deps: PaymentDeps) -> None:
    """No Checkout Session for this hold: put the units back and tell the buyer."""
    now = deps.now()
    with deps.uow_factory() as uow:
        details = uow.payments.details(reservation_id)
        effects = _Effects()
        if details is not None and uow.payments.release(reservation_id, status="released", now=now):
            closed = purchase.hold_closed(view_of(details), "buy.checkout_failed")
            effects.replies.append((f"checkout:{reservation_id}:failed", closed))
        _commit_and_publish(uow, effects, deps, now)


def expire_checkout(session_id: str, deps: PaymentDeps) -> None:
    """Close a released hold's session so it can no longer be paid (its `expired` event then tidies up)."""
    try:
        deps.stripe.expire_checkout(session_id)
    except stripe.StripeError as exc:
        if is_transient(exc):
            raise StripeUnavailable(type(exc).__name__) from exc
        raise


# -- Stripe events ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionSnapshot:
    """The fields of a Checkout Session we act on, as Stripe returned them just now."""

    id: str
    status: str | None
    payment_status: str | None
    payment_intent: str | None
    reservation_id: uuid.UUID | None
    amount_total: int
    currency: str
    url: str | None
    expires_at: datetime | None

    @classmethod
    def of(cls, stripe_session: Any) -> SessionSnapshot:
        session: dict[str, Any] = (
            stripe_session.to_dict() if hasattr(stripe_session, "to_dict") else stripe_session
        )
        metadata = session.get("metadata") or {}
        raw_id = metadata.get("reservation_id") or session.get("client_reference_id")
        try:
            reservation_id = uuid.UUID(str(raw_id)) if raw_id else None
        except ValueError:
            reservation_id = None
        intent = session.get("payment_intent")
        if intent is not None and not isinstance(intent, str):
            intent = intent.get("id")
        expires = session.get("expires_at")
        return cls(
            id=str(session["id"]),
            status=session.get("status"),
            payment_status=session.get("payment_status"),
            payment_intent=intent,
            reservation_id=reservation_id,
            amount_total=int(session.get("amount_total") or 0),
            currency=str(session.get("currency") or "").upper(),
            url=session.get("url"),
            expires_at=datetime.fromtimestamp(int(expires), UTC) if expires else None,
        )


def intent_status_of(snapshot: SessionSnapshot, deps: PaymentDeps) -> str | None:
    """The PaymentIntent's state for a session paid by a delayed method (complete + unpaid), else None:
    whether that payment is still processing or has failed shows only there (one more call to Stripe, made
    only for such sessions)."""
    if snapshot.status != "complete" or snapshot.payment_status != "unpaid" or not snapshot.payment_intent:
        return None
    try:
        return deps.stripe.intent_status(snapshot.payment_intent)
    except stripe.StripeError as exc:
        if is_transient(exc):
            raise StripeUnavailable(type(exc).__name__) from exc
        raise


def process_event(event_id: str, event_type: str, session_id: str, deps: PaymentDeps) -> str:
    """Apply one Stripe event to the hold behind its Checkout Session; returns what happened (for logs)."""
    try:
        snapshot = SessionSnapshot.of(deps.stripe.retrieve_checkout(session_id))
    except stripe.InvalidRequestError:
        # Signed by Stripe but not a session this account knows: nothing of ours to change.
        log.warning("stripe_event_unknown_session", event_id=event_id)
        return "unknown_session"
    except stripe.StripeError as exc:
        if is_transient(exc):
            raise StripeUnavailable(type(exc).__name__) from exc
        raise
    reservation_id = snapshot.reservation_id
    if reservation_id is None:
        log.warning("stripe_event_not_ours", event_id=event_id)
        return "not_ours"
    outcome = purchase.session_outcome(
        event_type, snapshot.status, snapshot.payment_status, intent_status_of(snapshot, deps)
    )
    now = deps.now()
    with deps.uow_factory() as uow:
        # Claimed in the transaction that applies the effect: a crash before the commit frees it again.
        if not uow.events.claim(STRIPE_EVENT_SOURCE, event_id, now):
            log.info("stripe_event_duplicate", event_id=event_id)
            return "duplicate"
        reservation = uow.payments.lock_reservation(reservation_id)
        if reservation is None or snapshot.amount_total <= 0:
            log.warning("stripe_event_unknown_reservation", event_id=event_id)
            uow.commit()
            return "not_ours"
        checkout = NewCheckout(
            snapshot.id, snapshot.amount_total, snapshot.currency, snapshot.url, snapshot.expires_at
        )
        payment = uow.payments.record_checkout(reservation_id, checkout, now)
        if payment.stripe_checkout_session_id != snapshot.id:
            # One session per hold (same idempotency key): another session for it is an anomaly to look at.
            log.error("stripe_event_second_session", event_id=event_id, reservation_id=str(reservation_id))
            uow.commit()
            return "session_mismatch"
        effects = _apply(uow, outcome, reservation, payment, snapshot, deps, now)
        _commit_and_publish(uow, effects, deps, now)
    log.info("stripe_event_applied", event_id=event_id, event_type=event_type, outcome=outcome)
    return outcome


def _apply(
    uow: SqlAlchemyUnitOfWork,
    outcome: purchase.Outcome,
    reservation: Reservation,
    payment: Payment,
    snapshot: SessionSnapshot,
    deps: PaymentDeps,
    now: datetime,
) -> _Effects:
    if outcome == "paid":
        return _paid(uow, reservation, payment, snapshot, deps, now)
    if outcome == "none" or not purchase.payment_may_become(payment.status, outcome):
        return _Effects()  # stale or repeated news: a later state already stands
    details = uow.payments.details(reservation.id)
    assert details is not None
    view = view_of(details)
    rid = reservation.id
    was = reservation.status
    uow.payments.set_payment_status(payment, outcome, now=now, payment_intent_id=snapshot.payment_intent)
    effects = _Effects()
    if outcome == "processing":
        effects.replies.append(
            (f"pay:{rid}:processing:card", purchase.hold_closed(view, "pay.card.processing"))
        )
        effects.replies.append((f"pay:{rid}:processing", purchase.notice(view, "pay.processing")))
    elif outcome == "failed":
        uow.payments.release(rid, status="released", now=now)
        effects.replies.append((f"pay:{rid}:failed:card", purchase.hold_closed(view, "pay.card.failed")))
        effects.replies.append((f"pay:{rid}:failed", purchase.notice(view, "pay.failed")))
    elif outcome == "expired":
        released = uow.payments.release(rid, status="expired", now=now)
        # Told unless they let it go themselves: a hold the lazy reclaim ended was never announced.
        if released or was == "expired":
            effects.replies.append((f"pay:{rid}:ended:card", purchase.hold_closed(view, "pay.card.ended")))
            effects.replies.append((f"pay:{rid}:ended", purchase.notice(view, "pay.hold_ended")))
    return effects


def _paid(
    uow: SqlAlchemyUnitOfWork,
    reservation: Reservation,
    payment: Payment,
    snapshot: SessionSnapshot,
    deps: PaymentDeps,
    now: datetime,
) -> _Effects:
    """Money arrived: the hold becomes an order, or, when its units are gone, the money goes back."""
    rid = reservation.id
    if not purchase.payment_may_become(payment.status, "paid"):
        return _Effects()  # already decided: an order or a refund exists for this payment
    details = uow.payments.details(rid)
    assert details is not None
    offer = uow.payments.offer_for_share(details.offer_id)
    assert offer is not None
    window_open = offer.pickup_end > now and offer.status not in ("cancelled", "expired")
    status = reservation.status
    if status == "held" and window_open:
        # Even past expires_at: the lazy reclaim's UPDATE re-checks status = 'held' and now skips it.
        fulfilled = uow.payments.mark_paid(rid, now=now, from_statuses=("held",))
    elif status == "held":
        uow.payments.release(rid, status="released", now=now)
        fulfilled = False
    elif status in ("released", "expired") and window_open and offer.status == "published":
        # Paid after the hold ended: the same units again if they are still there (invariant 2).
        fulfilled = uow.payments.retake(rid, now=now) and uow.payments.mark_paid(
            rid, now=now, from_statuses=("released", "expired")
        )
    else:
        fulfilled = status == "paid" and uow.payments.order_of(rid) is None
    view = view_of(details)
    if not fulfilled:
        uow.payments.set_payment_status(payment, "paid", now=now, payment_intent_id=snapshot.payment_intent)
        reason = "offer_cancelled" if offer.status == "cancelled" else "paid_after_release"
        job = request_refund(uow, payment, order_id=None, reason=reason, now=now)
        effects = _Effects(jobs=[job] if job is not None else [])
        if job is not None:
            _audit(uow, "payment.refund_requested", "payment", payment.id, reason, now)
            effects.replies.append(
                (f"pay:{rid}:refund:card", purchase.hold_closed(view, "pay.card.refunding"))
            )
            effects.replies.append((f"pay:{rid}:refund", purchase.notice(view, "pay.refunding")))
        return effects
    order = uow.payments.create_order(
        reservation, new_code=lambda: generate_pickup_code(secrets.token_bytes), now=now
    )
    uow.payments.set_payment_status(
        payment, "paid", now=now, payment_intent_id=snapshot.payment_intent, order_id=order.id
    )
    _audit(uow, "order.paid", "order", order.id, None, now)
    code = display_code(order.pickup_code)
    qr = pickup_qr_data(order.id, order.pickup_code, deps.bot_username)
    owner = purchase.owner_new_order(
        view,
        owner_chat_id=details.owner_chat_id,
        owner_lang=resolve_language(details.owner_language),
        code=code,
    )
    return _Effects(
        replies=[
            (f"order:{order.id}:card", purchase.paid_card(view)),
            (f"order:{order.id}:code", purchase.order_confirmation(view, code=code, qr_data=qr)),
            (f"order:{order.id}:owner", owner),
        ]
    )


def _audit(
    uow: SqlAlchemyUnitOfWork,
    action: str,
    subject_type: str,
    subject_id: object,
    reason: str | None,
    now: datetime,
) -> None:
    uow.audit.add(
        actor_telegram_user_id=None,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        reason=reason,
        now=now,
    )
