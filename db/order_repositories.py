"""Orders: the business's side (redeeming a pickup code, today's pickup list, sales figures) and the
customer's (their orders, cancelling one and returning its units to the offer)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Subquery, and_, case, func, select, text, update
from sqlalchemy.orm import Session

from core.orders import OrderSummary
from db.models import (
    Business,
    Offer,
    OfferItem,
    Order,
    Payment,
    Refund,
    Reservation,
    ReservationItem,
    User,
    Venue,
)

# Orders whose money the business keeps: what "sold" and "revenue" count.
SOLD_STATUSES = ("paid", "redeemed")


@dataclass(frozen=True)
class PickupListRow:
    """One order on the owner's pickup list. Only the buyer's first name: staff need no more to hand over."""

    offer_id: int
    offer_title: str
    pickup_start: datetime
    pickup_end: datetime
    order_id: uuid.UUID
    buyer_first_name: str | None
    quantity: int
    pickup_code: str
    status: str


class SalesStats(NamedTuple):
    offers_posted: int
    units_sold: int
    revenue_minor: int
    currency: str


def _units_per_reservation() -> Subquery:
    """Units each reservation held (an order's quantity is its reservation's)."""
    return (
        select(ReservationItem.reservation_id, func.sum(ReservationItem.quantity).label("quantity"))
        .group_by(ReservationItem.reservation_id)
        .subquery()
    )


# Give a cancelled order's units back to one offer item. LEAST: the schema's remaining <= quantity_total
# would otherwise refuse the whole cancellation if the owner lowered the total since (set_item_quantity
# keeps sold units counted, so this only trims what can't be sold anyway).
_RETURN_UNITS = text(
    """
    UPDATE offer_items
    SET remaining = LEAST(quantity_total, remaining + :quantity), updated_at = :now
    WHERE id = :item_id
    """
)


class OrderRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- the customer's side ------------------------------------------------------------------------------

    def of_customer(
        self, user_id: int, *, now: datetime, offset: int, limit: int
    ) -> tuple[list[OrderSummary], int]:
        """A page of the customer's orders, active ones first (soonest pickup first), then past ones
        (latest first), and how many orders they have in all. Active = core.orders.is_active."""
        active = and_(Order.status == "paid", Offer.pickup_end > now)
        stmt = (
            self._summaries()
            .where(Order.user_id == user_id)
            .order_by(
                case((active, 0), else_=1),
                case((active, Offer.pickup_start)),
                Offer.pickup_end.desc(),
                Order.created_at.desc(),
                Order.id,
            )
            .offset(offset)
            .limit(limit)
        )
        total = self.session.scalar(select(func.count()).select_from(Order).where(Order.user_id == user_id))
        return self._with_items(list(self.session.execute(stmt))), int(total or 0)

    def summary_of_customer(self, user_id: int, order_id: uuid.UUID) -> OrderSummary | None:
        """One order as its buyer sees it; None for an unknown id and for someone else's order alike."""
        stmt = self._summaries().where(Order.id == order_id, Order.user_id == user_id)
        found = self._with_items(list(self.session.execute(stmt.execution_options(populate_existing=True))))
        return found[0] if found else None

    def cancel(self, order_id: uuid.UUID, *, now: datetime, user_id: int | None = None) -> uuid.UUID | None:
        """Cancel a paid order and give its units back to the offer; return its reservation id, or None if
        it is not (or no longer) paid, or not `user_id`'s.

        One conditional UPDATE decides: of a double tap, a redelivered task, or a customer racing the owner's
        offer cancellation, exactly one caller sees the order go from paid to cancelled and returns the
        units. The offer is read FOR SHARE first, like holding units: an owner cancelling the offer (FOR
        UPDATE) goes before or after, never in between, so locks are always taken offer, order, items.
        """
        offer_id = self.session.scalar(select(Order.offer_id).where(Order.id == order_id))
        if offer_id is None:
            return None
        self.session.execute(select(Offer.id).where(Offer.id == offer_id).with_for_update(read=True))
        stmt = (
            update(Order)
            .where(Order.id == order_id, Order.status == "paid")
            .values(status="cancelled", cancelled_at=now, updated_at=now)
            .returning(Order.reservation_id)
            .execution_options(synchronize_session=False)
        )
        if user_id is not None:
            stmt = stmt.where(Order.user_id == user_id)
        reservation_id = self.session.scalar(stmt)
        if reservation_id is None:
            return None
        lines = self.session.execute(
            select(ReservationItem.offer_item_id, ReservationItem.quantity)
            .where(ReservationItem.reservation_id == reservation_id)
            .order_by(ReservationItem.offer_item_id)  # one lock order for every writer of offer_items
        )
        for item_id, quantity in lines:
            self.session.execute(_RETURN_UNITS, {"item_id": item_id, "quantity": quantity, "now": now})
        return reservation_id

    def owner_of_order(self, order_id: uuid.UUID) -> User | None:
        """The owner of the business whose offer the order is for (told when a customer cancels)."""
        stmt = (
            select(User)
            .join(Business, Business.owner_user_id == User.id)
            .join(Offer, Offer.business_id == Business.id)
            .join(Order, Order.offer_id == Offer.id)
            .where(Order.id == order_id)
        )
        return self.session.scalar(stmt)

    def payment_of_reservation(self, reservation_id: uuid.UUID) -> Payment | None:
        """The Stripe payment that paid for a hold (one per reservation)."""
        return self.session.scalar(select(Payment).where(Payment.reservation_id == reservation_id))

    def mark_refunded(self, order_id: uuid.UUID, *, now: datetime) -> bool:
        """An order whose money went back without a cancellation (paid or redeemed) becomes refunded. A
        cancelled order stays cancelled: its refund row tells the buyer the money went back."""
        stmt = (
            update(Order)
            .where(Order.id == order_id, Order.status.in_(("paid", "redeemed")))
            .values(status="refunded", updated_at=now)
            .returning(Order.id)
            .execution_options(synchronize_session=False)
        )
        return self.session.scalar(stmt) is not None

    def buyer_of_reservation(self, reservation_id: uuid.UUID) -> tuple[User, str] | None:
        """Who paid for a hold, and the offer's title (to tell them about their money)."""
        stmt = (
            select(User, Offer.title)
            .join(Reservation, Reservation.user_id == User.id)
            .join(Offer, Offer.id == Reservation.offer_id)
            .where(Reservation.id == reservation_id)
        )
        row = self.session.execute(stmt).one_or_none()
        return (row[0], row[1]) if row is not None else None

    @staticmethod
    def _summaries() -> Any:
        return (
            select(
                Order.id,
                Offer.title,
                Business.name,
                Order.total_minor,
                Order.currency,
                Order.status,
                Offer.pickup_start,
                Offer.pickup_end,
                Venue.timezone,
                Order.pickup_code,
                Refund.status,
                Order.reservation_id,
            )
            .join(Offer, Offer.id == Order.offer_id)
            .join(Business, Business.id == Offer.business_id)
            .join(Venue, Venue.id == Offer.venue_id)
            .outerjoin(Payment, Payment.reservation_id == Order.reservation_id)
            .outerjoin(Refund, Refund.payment_id == Payment.id)
        )

    def _with_items(self, rows: list[Any]) -> list[OrderSummary]:
        reservation_ids = [row[11] for row in rows]
        items: dict[uuid.UUID, list[tuple[str, int]]] = {r: [] for r in reservation_ids}
        if reservation_ids:
            stmt = (
                select(ReservationItem.reservation_id, OfferItem.name, ReservationItem.quantity)
                .join(OfferItem, OfferItem.id == ReservationItem.offer_item_id)
                .where(ReservationItem.reservation_id.in_(reservation_ids))
                .order_by(OfferItem.position)
            )
            for reservation_id, name, quantity in self.session.execute(stmt):
                items[reservation_id].append((name, int(quantity)))
        return [
            OrderSummary(
                order_id=row[0],
                offer_title=row[1],
                business_name=row[2],
                items=tuple(items[row[11]]),
                total_minor=row[3],
                currency=row[4],
                status=row[5],
                pickup_start=row[6],
                pickup_end=row[7],
                timezone=row[8],
                pickup_code=row[9],
                refund_status=row[10],
            )
            for row in rows
        ]

    # -- the business's side ------------------------------------------------------------------------------

    def find_for_redemption(
        self, business_id: int, code: str, *, order_id: uuid.UUID | None = None
    ) -> Order | None:
        """The order with `code` on one of this business's offers, row-locked, or None.

        FOR UPDATE makes a double tap (or two staff phones) redeem once: the second transaction waits for
        the first and then reads the order as already redeemed. Codes are unique per offer only, so if two
        offers of the business share one, an order still to collect wins, then the latest pickup.
        """
        stmt = (
            select(Order)
            .join(Offer, Offer.id == Order.offer_id)
            .where(Offer.business_id == business_id, Order.pickup_code == code)
            .order_by((Order.status != "paid"), Offer.pickup_end.desc(), Order.created_at.desc())
            .limit(1)
            .with_for_update(of=Order)
        )
        if order_id is not None:
            stmt = stmt.where(Order.id == order_id)
        return self.session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()

    def get_for_update(self, order_id: uuid.UUID) -> Order | None:
        stmt = select(Order).where(Order.id == order_id).with_for_update()
        return self.session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()

    def items_of(self, order: Order) -> list[tuple[str, int]]:
        """(item name, quantity) of what the order's reservation held, in the offer's item order."""
        stmt = (
            select(OfferItem.name, ReservationItem.quantity)
            .join(OfferItem, OfferItem.id == ReservationItem.offer_item_id)
            .where(ReservationItem.reservation_id == order.reservation_id)
            .order_by(OfferItem.position)
        )
        return [(name, int(quantity)) for name, quantity in self.session.execute(stmt)]

    def todays_orders(
        self, business_id: int, day_start_utc: datetime, day_end_utc: datetime
    ) -> list[PickupListRow]:
        """Orders on the business's offers whose pickup window overlaps [day_start_utc, day_end_utc)."""
        units = _units_per_reservation()
        stmt = (
            select(
                Offer.id,
                Offer.title,
                Offer.pickup_start,
                Offer.pickup_end,
                Order.id,
                User.first_name,
                func.coalesce(units.c.quantity, 0),
                Order.pickup_code,
                Order.status,
            )
            .join(Offer, Offer.id == Order.offer_id)
            .join(User, User.id == Order.user_id)
            .outerjoin(units, units.c.reservation_id == Order.reservation_id)
            .where(
                Offer.business_id == business_id,
                Offer.pickup_start < day_end_utc,
                Offer.pickup_end > day_start_utc,
            )
            .order_by(Offer.pickup_start, Offer.id, Order.created_at, Order.id)
        )
        return [
            PickupListRow(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7], r[8])
            for r in self.session.execute(stmt)
        ]

    def stats(self, business_id: int, since_utc: datetime) -> SalesStats:
        """Offers published, and units and revenue of orders placed (and not cancelled or refunded), since."""
        currency = self.session.scalar(select(Business.currency).where(Business.id == business_id))
        if currency is None:
            raise LookupError(f"no business {business_id}")
        posted = self.session.scalar(
            select(func.count())
            .select_from(Offer)
            .where(Offer.business_id == business_id, Offer.published_at >= since_utc)
        )
        units = _units_per_reservation()
        sold = self.session.execute(
            select(
                func.coalesce(func.sum(units.c.quantity), 0),
                func.coalesce(func.sum(Order.total_minor), 0),
            )
            .join(Offer, Offer.id == Order.offer_id)
            .outerjoin(units, units.c.reservation_id == Order.reservation_id)
            .where(
                Offer.business_id == business_id,
                Order.status.in_(SOLD_STATUSES),
                Order.created_at >= since_utc,
            )
        ).one()
        return SalesStats(int(posted or 0), int(sold[0]), int(sold[1]), currency)
