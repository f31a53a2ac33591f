"""Orders from the business's side: redeeming a pickup code, today's pickup list, and sales figures."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Subquery, func, select
from sqlalchemy.orm import Session

from db.models import Business, Offer, OfferItem, Order, ReservationItem, User

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


class OrderRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

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
