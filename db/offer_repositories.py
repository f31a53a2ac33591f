"""Offers and their items: creating a published offer, and the owner's list with live counts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from db.models import Offer, OfferItem, Order, Reservation, ReservationItem, User, Venue


@dataclass(frozen=True)
class NewItem:
    name: str
    quantity: int
    normal_price_minor: int
    offer_price_minor: int


@dataclass(frozen=True)
class OfferCounts:
    """Live numbers for an owner's list. `held` counts only unexpired holds (expiry is a query condition)."""

    offer_id: int
    title: str
    status: str
    pickup_start: datetime
    pickup_end: datetime
    available: int
    held: int
    total: int

    @property
    def sold(self) -> int:
        return self.total - self.available - self.held


@dataclass(frozen=True)
class PaidOrder:
    order_id: uuid.UUID
    buyer_chat_id: int
    buyer_language: str | None


class OfferRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_for_update(self, offer_id: int) -> Offer | None:
        """Lock the offer: a double tap or two owners' phones act on it one after the other."""
        stmt = select(Offer).where(Offer.id == offer_id).with_for_update()
        return self.session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()

    def set_status(self, offer: Offer, status: str, *, now: datetime) -> None:
        offer.status = status
        offer.updated_at = now
        if status == "published" and offer.published_at is None:
            offer.published_at = now
        if status == "cancelled":
            offer.cancelled_at = now
        self.session.flush()

    def items(self, offer_id: int) -> list[OfferItem]:
        stmt = select(OfferItem).where(OfferItem.offer_id == offer_id).order_by(OfferItem.position)
        return list(self.session.scalars(stmt.execution_options(populate_existing=True)))

    def set_item_quantity(self, item_id: int, new_total: int, *, now: datetime) -> bool:
        """Change an item's total; units already held or sold stay theirs, so `remaining` moves by the
        difference and the change is refused (False) if it would go below zero. One conditional UPDATE:
        correct even while buyers are reserving the same item."""
        stmt = (
            update(OfferItem)
            .where(
                OfferItem.id == item_id,
                OfferItem.remaining + (new_total - OfferItem.quantity_total) >= 0,
            )
            .values(
                remaining=OfferItem.remaining + (new_total - OfferItem.quantity_total),
                quantity_total=new_total,
                updated_at=now,
            )
            .returning(OfferItem.id)
        )
        return self.session.execute(stmt).first() is not None

    def set_item_offer_price(self, item_id: int, offer_price_minor: int, *, now: datetime) -> None:
        """Existing holds and orders keep the unit price they were made at (reservation_items)."""
        self.session.execute(
            update(OfferItem)
            .where(OfferItem.id == item_id)
            .values(offer_price_minor=offer_price_minor, updated_at=now)
        )

    def paid_orders(self, offer_id: int) -> list[PaidOrder]:
        """Orders paid and not yet picked up: the ones a cancellation must refund."""
        stmt = (
            select(Order.id, func.coalesce(User.chat_id, User.telegram_user_id), User.language_code)
            .join(User, User.id == Order.user_id)
            .where(Order.offer_id == offer_id, Order.status == "paid")
            .order_by(Order.created_at)
        )
        return [PaidOrder(r[0], int(r[1]), r[2]) for r in self.session.execute(stmt)]

    def create(
        self,
        *,
        business_id: int,
        venue_id: int,
        title: str,
        description: str,
        photo_file_id: str,
        thumb_file_id: str,
        pickup_start: datetime,
        pickup_end: datetime,
        currency: str,
        dietary_tags: list[str],
        items: list[NewItem],
        status: str,
        now: datetime,
    ) -> Offer:
        venue = self.session.get(Venue, venue_id)
        offer = Offer(
            business_id=business_id,
            venue_id=venue_id,
            # The venue's pin, copied so distance search needs no join (venue pins rarely move; an offer
            # lives for hours).
            latitude=venue.latitude if venue is not None else None,
            longitude=venue.longitude if venue is not None else None,
            title=title,
            description=description or None,
            photo_file_id=photo_file_id,
            thumb_file_id=thumb_file_id,
            pickup_start=pickup_start,
            pickup_end=pickup_end,
            currency=currency,
            dietary_tags=dietary_tags,
            status=status,
            published_at=now if status == "published" else None,
            created_at=now,
            updated_at=now,
        )
        for position, item in enumerate(items):
            offer.items.append(
                OfferItem(
                    position=position,
                    name=item.name,
                    quantity_total=item.quantity,
                    remaining=item.quantity,
                    normal_price_minor=item.normal_price_minor,
                    offer_price_minor=item.offer_price_minor,
                    created_at=now,
                    updated_at=now,
                )
            )
        self.session.add(offer)
        self.session.flush()
        return offer

    def counts_for_business(self, business_id: int, *, now: datetime, limit: int = 20) -> list[OfferCounts]:
        """The business's offers, newest first, with available / held / total units.

        `remaining` drops when a unit is held; a hold that has expired but was not swept yet counts as
        available again (expiry is a query condition, the sweep only tidies up).
        """
        live = Reservation.expires_at > now
        holds = (
            select(
                ReservationItem.offer_item_id,
                func.sum(case((live, ReservationItem.quantity), else_=0)).label("live"),
                func.sum(case((live, 0), else_=ReservationItem.quantity)).label("lapsed"),
            )
            .join(Reservation, Reservation.id == ReservationItem.reservation_id)
            .where(Reservation.status == "held")
            .group_by(ReservationItem.offer_item_id)
            .subquery()
        )
        stmt = (
            select(
                Offer.id,
                Offer.title,
                Offer.status,
                Offer.pickup_start,
                Offer.pickup_end,
                func.coalesce(func.sum(OfferItem.remaining + func.coalesce(holds.c.lapsed, 0)), 0),
                func.coalesce(func.sum(holds.c.live), 0),
                func.coalesce(func.sum(OfferItem.quantity_total), 0),
            )
            .join(OfferItem, OfferItem.offer_id == Offer.id)
            .outerjoin(holds, holds.c.offer_item_id == OfferItem.id)
            .where(Offer.business_id == business_id)
            .group_by(Offer.id)
            .order_by(Offer.created_at.desc(), Offer.id.desc())
            .limit(limit)
        )
        return [
            OfferCounts(r[0], r[1], r[2], r[3], r[4], int(r[5]), int(r[6]), int(r[7]))
            for r in self.session.execute(stmt)
        ]
