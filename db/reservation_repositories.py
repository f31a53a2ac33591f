"""Holding units for a buyer: correct with any number of concurrent buyers, workers and retries.

- Each line is one conditional `UPDATE offer_items SET remaining = remaining - q WHERE remaining >= q`
  (invariant 1); a line that cannot be satisfied raises SoldOut and the caller's transaction rolls back
  every line before it. `CHECK (remaining >= 0)` is the backstop.
- Lapsed holds of the offer are reclaimed in the same transaction first (status → expired, units back),
  so an expired hold never blocks a sale even when the release sweep is late. Two buyers reclaiming at
  once cannot return units twice: the second UPDATE re-checks `status = 'held'` after the first commits.
- The offer row is read FOR SHARE: a concurrent pause or cancel (FOR UPDATE) waits for the hold or
  happens before it, never in the middle.
- The idempotency key (from the Buy command) makes a double tap or a redelivered task find the same hold.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.reservations import Line, OfferNotOnSale, SoldOut
from db.models import Offer, Reservation, ReservationItem

_RECLAIM_LAPSED = text(
    """
    WITH lapsed AS (
        UPDATE reservations SET status = 'expired', updated_at = :now
        WHERE offer_id = :offer_id AND status = 'held' AND expires_at <= :now
        RETURNING id
    ), freed AS (
        SELECT ri.offer_item_id, sum(ri.quantity) AS quantity
        FROM reservation_items ri JOIN lapsed ON lapsed.id = ri.reservation_id
        GROUP BY ri.offer_item_id
    )
    UPDATE offer_items SET remaining = offer_items.remaining + freed.quantity, updated_at = :now
    FROM freed WHERE offer_items.id = freed.offer_item_id
    """
)

_TAKE = text(
    """
    UPDATE offer_items SET remaining = remaining - :quantity, updated_at = :now
    WHERE id = :item_id AND offer_id = :offer_id AND remaining >= :quantity
    RETURNING offer_price_minor
    """
)


@dataclass(frozen=True)
class Hold:
    reservation_id: uuid.UUID
    total_minor: int
    currency: str
    expires_at: datetime
    created: bool  # False: an earlier request with the same key already made this hold


class ReservationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def hold(
        self,
        *,
        user_id: int,
        offer_id: int,
        lines: list[Line],
        idempotency_key: str,
        expires_at: datetime,
        now: datetime,
    ) -> Hold:
        existing = self.session.scalar(
            select(Reservation).where(Reservation.idempotency_key == idempotency_key)
        )
        if existing is not None:
            return Hold(
                existing.id, existing.total_minor, existing.currency, existing.expires_at, created=False
            )
        offer = self.session.scalar(select(Offer).where(Offer.id == offer_id).with_for_update(read=True))
        if offer is None or offer.status != "published" or offer.pickup_end <= now:
            raise OfferNotOnSale(offer_id=offer_id)
        self.session.execute(_RECLAIM_LAPSED, {"offer_id": offer_id, "now": now})
        reservation = Reservation(
            id=uuid.uuid4(),
            user_id=user_id,
            offer_id=offer_id,
            status="held",
            expires_at=expires_at,
            total_minor=0,
            currency=offer.currency,
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
        )
        total = 0
        for line in sorted(lines, key=lambda item: item.offer_item_id):
            price = self.session.scalar(
                _TAKE,
                {"quantity": line.quantity, "item_id": line.offer_item_id, "offer_id": offer_id, "now": now},
            )
            if price is None:
                raise SoldOut(offer_item_id=line.offer_item_id, quantity=line.quantity)
            total += price * line.quantity
            reservation.items.append(
                ReservationItem(
                    offer_item_id=line.offer_item_id, quantity=line.quantity, unit_price_minor=price
                )
            )
        reservation.total_minor = total
        self.session.add(reservation)
        self.session.flush()
        return Hold(reservation.id, total, offer.currency, expires_at, created=True)
