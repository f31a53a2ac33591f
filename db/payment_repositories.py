"""Payments for holds: the Checkout Session row, a hold's fate once Stripe reports, and the order it becomes.

Lock order, everywhere a payment changes: reservation row (FOR UPDATE), then its payment row, then offer
items. The checkout task and the Stripe event task both start at the reservation, so they queue behind each
other instead of deadlocking (a payment row inserted by one while the other waits for the reservation).

Every state change is a conditional UPDATE on the status it expects (`WHERE status = 'held'`), so the lazy
reclaim inside ReservationRepository.hold, the release button and a payment racing each other give units
back, or take them, exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from db.models import Business, Offer, OfferItem, Order, Payment, Reservation, ReservationItem, User, Venue

# A pickup code collides with another order of the same offer about once in 887 million draws per order;
# a few retries make a second collision practically impossible while bounding a broken generator.
MAX_CODE_ATTEMPTS = 8

# Items are locked in id order before any changes, as buyers and the hold sweep take them, so releasing a
# hold of several items never waits in a cycle with either (a deadlock PostgreSQL would break by aborting).
_RELEASE = text(
    """
    WITH released AS (
        UPDATE reservations SET status = :status, updated_at = :now
        WHERE id = :reservation_id AND status = 'held'
        RETURNING id
    ), freed AS (
        SELECT ri.offer_item_id, sum(ri.quantity) AS quantity
        FROM reservation_items ri JOIN released ON released.id = ri.reservation_id
        GROUP BY ri.offer_item_id
    ), locked AS MATERIALIZED (
        SELECT oi.id, freed.quantity
        FROM offer_items oi JOIN freed ON freed.offer_item_id = oi.id
        ORDER BY oi.id
        FOR NO KEY UPDATE OF oi
    )
    UPDATE offer_items SET remaining = offer_items.remaining + locked.quantity, updated_at = :now
    FROM locked WHERE offer_items.id = locked.id
    RETURNING offer_items.id
    """
)

_RETAKE = text(
    """
    UPDATE offer_items SET remaining = remaining - :quantity, updated_at = :now
    WHERE id = :item_id AND remaining >= :quantity
    RETURNING id
    """
)

# Units a buyer could get now: what is on the shelf plus holds that lapsed but were not reclaimed yet.
_AVAILABLE = text(
    """
    SELECT oi.remaining + coalesce((
        SELECT sum(ri.quantity) FROM reservation_items ri JOIN reservations r ON r.id = ri.reservation_id
        WHERE ri.offer_item_id = oi.id AND r.status = 'held' AND r.expires_at <= :now
    ), 0)
    FROM offer_items oi WHERE oi.id = :item_id
    """
)


@dataclass(frozen=True)
class HoldItem:
    offer_item_id: int
    name: str
    quantity: int
    unit_price_minor: int


@dataclass(frozen=True)
class HoldDetails:
    """A hold with everything its messages and its Checkout Session need, read in one place."""

    reservation_id: uuid.UUID
    status: str
    user_id: int
    expires_at: datetime
    total_minor: int
    currency: str
    chat_message_id: int | None
    created_at: datetime
    buyer_chat_id: int
    buyer_language: str | None
    offer_id: int
    offer_title: str
    offer_status: str
    pickup_start: datetime
    pickup_end: datetime
    photo_file_id: str | None
    business_name: str
    owner_chat_id: int
    owner_language: str | None
    venue_name: str
    venue_address: str | None
    timezone: str
    items: tuple[HoldItem, ...]


@dataclass(frozen=True)
class NewCheckout:
    session_id: str
    amount_minor: int
    currency: str  # upper-case ISO code, as our rows store it
    checkout_url: str | None
    expires_at: datetime | None


class PaymentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- reading ------------------------------------------------------------------------------------------

    def details(self, reservation_id: uuid.UUID) -> HoldDetails | None:
        owner = User.__table__.alias("owner")
        row = self.session.execute(
            select(
                Reservation,
                User.chat_id,
                User.telegram_user_id,
                User.language_code,
                Offer,
                Business.name,
                owner.c.chat_id,
                owner.c.telegram_user_id,
                owner.c.language_code,
                Venue.name,
                Venue.address,
                Venue.timezone,
            )
            .join(User, User.id == Reservation.user_id)
            .join(Offer, Offer.id == Reservation.offer_id)
            .join(Business, Business.id == Offer.business_id)
            .join(owner, owner.c.id == Business.owner_user_id)
            .join(Venue, Venue.id == Offer.venue_id)
            .where(Reservation.id == reservation_id)
            .execution_options(populate_existing=True)
        ).one_or_none()
        if row is None:
            return None
        reservation: Reservation = row[0]
        offer: Offer = row[4]
        items = self.session.execute(
            select(OfferItem.id, OfferItem.name, ReservationItem.quantity, ReservationItem.unit_price_minor)
            .join(OfferItem, OfferItem.id == ReservationItem.offer_item_id)
            .where(ReservationItem.reservation_id == reservation_id)
            .order_by(OfferItem.position)
        ).all()
        return HoldDetails(
            reservation_id=reservation.id,
            status=reservation.status,
            user_id=reservation.user_id,
            expires_at=reservation.expires_at,
            total_minor=reservation.total_minor,
            currency=reservation.currency,
            chat_message_id=reservation.chat_message_id,
            created_at=reservation.created_at,
            buyer_chat_id=int(row[1] or row[2]),
            buyer_language=row[3],
            offer_id=offer.id,
            offer_title=offer.title,
            offer_status=offer.status,
            pickup_start=offer.pickup_start,
            pickup_end=offer.pickup_end,
            photo_file_id=offer.photo_file_id,
            business_name=row[5],
            owner_chat_id=int(row[6] or row[7]),
            owner_language=row[8],
            venue_name=row[9],
            venue_address=row[10],
            timezone=row[11],
            items=tuple(HoldItem(int(i[0]), i[1], int(i[2]), int(i[3])) for i in items),
        )

    def open_hold_of(self, user_id: int, offer_id: int, now: datetime) -> Reservation | None:
        """The buyer's newest hold on this offer that is still running (unpaid and unexpired), if any."""
        stmt = (
            select(Reservation)
            .where(
                Reservation.user_id == user_id,
                Reservation.offer_id == offer_id,
                Reservation.status == "held",
                Reservation.expires_at > now,
            )
            .order_by(Reservation.created_at.desc())
            .limit(1)
        )
        return self.session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()

    def available_units(self, offer_item_id: int, now: datetime) -> int:
        return int(self.session.scalar(_AVAILABLE, {"item_id": offer_item_id, "now": now}) or 0)

    def lock_reservation(self, reservation_id: uuid.UUID) -> Reservation | None:
        stmt = select(Reservation).where(Reservation.id == reservation_id).with_for_update()
        return self.session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()

    def payment_of(self, reservation_id: uuid.UUID, *, for_update: bool = False) -> Payment | None:
        stmt = select(Payment).where(Payment.reservation_id == reservation_id)
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()

    def order_of(self, reservation_id: uuid.UUID) -> Order | None:
        return self.session.scalar(select(Order).where(Order.reservation_id == reservation_id))

    def offer_for_share(self, offer_id: int) -> Offer | None:
        """Read the offer FOR SHARE: a concurrent pause or cancel waits for this transaction (as in hold)."""
        stmt = select(Offer).where(Offer.id == offer_id).with_for_update(read=True)
        return self.session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()

    # -- the Checkout Session -----------------------------------------------------------------------------

    def record_checkout(self, reservation_id: uuid.UUID, checkout: NewCheckout, now: datetime) -> Payment:
        """Store the hold's Checkout Session once, and return the (locked) row.

        ON CONFLICT DO NOTHING: the checkout task retried, or the Stripe event for the session got here
        first and stored it from the session itself; either way the first row stands.
        """
        self.session.execute(
            insert(Payment)
            .values(
                reservation_id=reservation_id,
                stripe_checkout_session_id=checkout.session_id,
                status="open",
                amount_minor=checkout.amount_minor,
                currency=checkout.currency,
                checkout_url=checkout.checkout_url,
                expires_at=checkout.expires_at,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
        )
        payment = self.payment_of(reservation_id, for_update=True)
        if payment is None:  # the session id is stored for another reservation: never ours to create
            raise LookupError(f"checkout session {checkout.session_id} belongs to another reservation")
        return payment

    def set_payment_status(
        self,
        payment: Payment,
        status: str,
        *,
        now: datetime,
        payment_intent_id: str | None = None,
        order_id: uuid.UUID | None = None,
    ) -> None:
        payment.status = status
        payment.updated_at = now
        if payment_intent_id and payment.stripe_payment_intent_id is None:
            payment.stripe_payment_intent_id = payment_intent_id
        if status == "paid" and payment.paid_at is None:
            payment.paid_at = now
        if order_id is not None:
            payment.order_id = order_id
        self.session.flush()

    # -- the hold's fate ----------------------------------------------------------------------------------

    def release(self, reservation_id: uuid.UUID, *, status: str, now: datetime) -> bool:
        """End a hold that is still `held` (status 'released' or 'expired') and put its units back.

        False when it was no longer held: someone else (the buyer, the sweep, a payment) decided first.
        """
        returned = self.session.execute(
            _RELEASE, {"reservation_id": reservation_id, "status": status, "now": now}
        ).all()
        self._forget(reservation_id)
        return bool(returned)

    def mark_paid(self, reservation_id: uuid.UUID, *, now: datetime, from_statuses: tuple[str, ...]) -> bool:
        updated = self.session.execute(
            update(Reservation)
            .where(Reservation.id == reservation_id, Reservation.status.in_(from_statuses))
            .values(status="paid", updated_at=now)
            .returning(Reservation.id)
            .execution_options(synchronize_session=False)
        ).first()
        self._forget(reservation_id)
        return updated is not None

    def retake(self, reservation_id: uuid.UUID, *, now: datetime) -> bool:
        """Take a lapsed hold's units again for a payment that arrived late; all lines or none.

        The same conditional UPDATE as a new hold (invariant 1), inside a savepoint so a line that no longer
        fits undoes the lines before it without touching the rest of the caller's transaction.
        """
        lines = self.session.execute(
            select(ReservationItem.offer_item_id, ReservationItem.quantity)
            .where(ReservationItem.reservation_id == reservation_id)
            .order_by(ReservationItem.offer_item_id)  # lock rows in one order, as holds do
        ).all()
        savepoint = self.session.begin_nested()
        for item_id, quantity in lines:
            taken = self.session.execute(
                _RETAKE, {"item_id": item_id, "quantity": quantity, "now": now}
            ).first()
            if taken is None:
                savepoint.rollback()
                return False
        savepoint.commit()
        return True

    def create_order(self, reservation: Reservation, *, new_code: Callable[[], str], now: datetime) -> Order:
        """The paid hold's order with a fresh pickup code, unique among the offer's orders."""
        for _ in range(MAX_CODE_ATTEMPTS):
            code = new_code()
            order_id = self.session.scalar(
                insert(Order)
                .values(
                    id=uuid.uuid4(),
                    reservation_id=reservation.id,
                    user_id=reservation.user_id,
                    offer_id=reservation.offer_id,
                    status="paid",
                    pickup_code=code,
                    total_minor=reservation.total_minor,
                    currency=reservation.currency,
                    created_at=now,
                    updated_at=now,
                )
                # Only the code may collide here: the caller holds the reservation's lock and found no order,
                # so a duplicate reservation_id is a bug and raises.
                .on_conflict_do_nothing(index_elements=[Order.offer_id, Order.pickup_code])
                .returning(Order.id)
            )
            if order_id is not None:
                order = self.session.get(Order, order_id)
                assert order is not None
                return order
        raise RuntimeError(f"no free pickup code after {MAX_CODE_ATTEMPTS} attempts")

    def _forget(self, reservation_id: uuid.UUID) -> None:
        """Raw SQL changed the row: make a loaded Reservation re-read it instead of showing the old status."""
        loaded = self.session.identity_map.get(identity_key(Reservation, reservation_id))
        if loaded is not None:
            self.session.expire(loaded)
