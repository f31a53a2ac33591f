"""Queries of the periodic jobs: batches that several workers can share without waiting on each other.

Every batch locks its rows with `FOR UPDATE SKIP LOCKED`: two sweeps running at once (a slow tick
overlapping the next, or a replayed task) take disjoint rows instead of blocking or doing the work twice,
and a buyer holding one of the rows is skipped this round rather than made to wait.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

# One statement per batch, so the sweep costs a few round trips per batch instead of one per item:
# - claim up to :batch lapsed holds FOR UPDATE SKIP LOCKED and mark them expired. A hold whose row someone
#   else has locked is skipped this round: a payment applying it (the payment path locks the reservation
#   first, then decides on `status`), the buyer releasing it, or another sweep. A payment that waits for our
#   lock instead finds the hold expired when it gets it, and re-reserves or refunds (payment_flows).
# - lock the freed items FOR NO KEY UPDATE in id order before changing any of them, as buyers take them
#   (ReservationRepository.hold), so a sweep and a buyer never wait for each other in a cycle; two sweeps
#   cannot either, since each claims different holds and both take items in id order. (NO KEY UPDATE is
#   what the UPDATE itself takes: it does not block buyers' foreign-key checks, which take KEY SHARE.)
# - return each item's units once, summed over the batch (LEAST: never above the item's total);
# - return the claimed holds with the Checkout Sessions still open for them.
_RELEASE_LAPSED_HOLDS = text(
    """
    WITH lapsed AS (
        SELECT id FROM reservations
        WHERE status = 'held' AND expires_at <= :now
        ORDER BY expires_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ), expired AS (
        -- = ANY(ARRAY(…)): primary-key look-ups, never a scan of every reservation ever made.
        UPDATE reservations r SET status = 'expired', updated_at = :now
        WHERE r.id = ANY(ARRAY(SELECT id FROM lapsed))
        RETURNING r.id
    ), freed AS (
        SELECT ri.offer_item_id, sum(ri.quantity) AS quantity
        FROM reservation_items ri WHERE ri.reservation_id = ANY(ARRAY(SELECT id FROM expired))
        GROUP BY ri.offer_item_id
    ), locked AS MATERIALIZED (
        -- LockRows runs above the sort: the rows are locked in id order.
        SELECT oi.id, freed.quantity
        FROM offer_items oi JOIN freed ON freed.offer_item_id = oi.id
        ORDER BY oi.id
        FOR NO KEY UPDATE OF oi
    ), returned AS (
        UPDATE offer_items oi
        SET remaining = LEAST(oi.quantity_total, oi.remaining + locked.quantity), updated_at = :now
        FROM locked WHERE oi.id = locked.id
    )
    SELECT expired.id, p.stripe_checkout_session_id
    FROM expired
    LEFT JOIN payments p ON p.reservation_id = expired.id AND p.status IN ('open', 'processing')
    """
)

_CLAIM_ENDED_OFFERS = text(
    """
    WITH ended AS (
        SELECT id FROM offers
        WHERE status IN ('draft', 'published', 'paused', 'sold_out') AND pickup_end <= :now
        ORDER BY pickup_end
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    UPDATE offers o SET status = 'expired', updated_at = :now
    FROM ended WHERE o.id = ended.id
    RETURNING o.id, o.status
    """
)

_OFFER_SUMMARIES = text(
    """
    SELECT o.id, o.title, o.currency, b.name AS business_name,
           coalesce(u.chat_id, u.telegram_user_id) AS owner_chat_id, u.language_code AS owner_language,
           (SELECT coalesce(sum(quantity_total), 0) FROM offer_items WHERE offer_id = o.id) AS units_offered,
           (SELECT count(*) FROM orders WHERE offer_id = o.id AND status IN ('paid', 'redeemed')) AS orders,
           (SELECT count(*) FROM orders WHERE offer_id = o.id AND status = 'redeemed') AS redeemed,
           (SELECT count(*) FROM orders WHERE offer_id = o.id AND status = 'paid') AS not_collected,
           (SELECT coalesce(sum(ri.quantity), 0) FROM orders od
              JOIN reservation_items ri ON ri.reservation_id = od.reservation_id
             WHERE od.offer_id = o.id AND od.status IN ('paid', 'redeemed')) AS units_sold,
           (SELECT coalesce(sum(total_minor), 0) FROM orders
             WHERE offer_id = o.id AND status IN ('paid', 'redeemed')) AS revenue_minor,
           o.published_at IS NOT NULL AS was_published
    FROM offers o
    JOIN businesses b ON b.id = o.business_id
    JOIN users u ON u.id = b.owner_user_id
    WHERE o.id = ANY(:ids)
    ORDER BY o.id
    """
)

_DUE_REMINDERS = text(
    """
    WITH due AS (
        SELECT od.id FROM orders od JOIN offers o ON o.id = od.offer_id
        WHERE od.status = 'paid' AND od.reminded_at IS NULL
          AND o.pickup_end > :now
          AND greatest(o.pickup_start, o.pickup_end - make_interval(mins => :lead_minutes)) <= :now
        ORDER BY o.pickup_end
        LIMIT :batch
        FOR UPDATE OF od SKIP LOCKED
    )
    UPDATE orders od SET reminded_at = :now, updated_at = :now
    FROM due WHERE od.id = due.id
    RETURNING od.id
    """
)

_REMINDER_ROWS = text(
    """
    SELECT od.id, od.pickup_code, o.title, o.pickup_end, v.name AS venue_name, v.address, v.timezone,
           coalesce(u.chat_id, u.telegram_user_id) AS chat_id, u.language_code
    FROM orders od
    JOIN offers o ON o.id = od.offer_id
    JOIN venues v ON v.id = o.venue_id
    JOIN users u ON u.id = od.user_id
    WHERE od.id = ANY(:ids) AND u.unreachable_at IS NULL
    ORDER BY od.id
    """
)

_LAST_CALL_OFFERS = text(
    """
    SELECT o.id, o.title, v.timezone, o.pickup_end,
           coalesce(u.chat_id, u.telegram_user_id) AS owner_chat_id, u.language_code AS owner_language,
           array_agg(od.pickup_code ORDER BY od.pickup_code) AS codes
    FROM offers o
    JOIN venues v ON v.id = o.venue_id
    JOIN businesses b ON b.id = o.business_id
    JOIN users u ON u.id = b.owner_user_id
    JOIN orders od ON od.offer_id = o.id AND od.status = 'paid'
    WHERE o.pickup_end > :now AND o.pickup_end - make_interval(mins => :lead_minutes) <= :now
    GROUP BY o.id, v.timezone, u.chat_id, u.telegram_user_id, u.language_code
    ORDER BY o.pickup_end
    LIMIT :batch
    """
)


@dataclass(frozen=True)
class ReleasedHolds:
    reservation_ids: list[uuid.UUID]
    open_session_ids: list[str]  # Checkout Sessions to expire so nobody pays for a released hold


@dataclass(frozen=True)
class EndedOffer:
    offer_id: int
    title: str
    currency: str
    business_name: str
    owner_chat_id: int
    owner_language: str | None
    units_offered: int
    units_sold: int
    orders: int
    redeemed: int
    not_collected: int
    revenue_minor: int
    was_published: bool


@dataclass(frozen=True)
class Reminder:
    order_id: uuid.UUID
    pickup_code: str
    title: str
    pickup_end: datetime
    venue_name: str
    address: str | None
    timezone: str
    chat_id: int
    language_code: str | None


@dataclass(frozen=True)
class LastCall:
    offer_id: int
    title: str
    timezone: str
    pickup_end: datetime
    owner_chat_id: int
    owner_language: str | None
    codes: list[str]


class MaintenanceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def release_lapsed_holds(self, *, now: datetime, batch: int) -> ReleasedHolds:
        """Expire up to `batch` lapsed holds and give their units back, in this transaction (one statement).

        Availability already ignores lapsed holds (the buy path reclaims them lazily), so this only
        tidies up; a hold the buy path reclaimed first is no longer 'held' and is not returned twice.
        """
        rows = self.session.execute(_RELEASE_LAPSED_HOLDS, {"now": now, "batch": batch}).all()
        # One row per hold: payments.reservation_id is unique.
        return ReleasedHolds([row[0] for row in rows], [str(row[1]) for row in rows if row[1] is not None])

    def expire_ended_offers(self, *, now: datetime, batch: int) -> list[EndedOffer]:
        ids = [int(row[0]) for row in self.session.execute(_CLAIM_ENDED_OFFERS, {"now": now, "batch": batch})]
        if not ids:
            return []
        rows = self.session.execute(_OFFER_SUMMARIES, {"ids": ids}).mappings()
        return [
            EndedOffer(
                offer_id=int(r["id"]),
                title=r["title"],
                currency=r["currency"],
                business_name=r["business_name"],
                owner_chat_id=int(r["owner_chat_id"]),
                owner_language=r["owner_language"],
                units_offered=int(r["units_offered"]),
                units_sold=int(r["units_sold"]),
                orders=int(r["orders"]),
                redeemed=int(r["redeemed"]),
                not_collected=int(r["not_collected"]),
                revenue_minor=int(r["revenue_minor"]),
                was_published=bool(r["was_published"]),
            )
            for r in rows
        ]

    def claim_due_reminders(self, *, now: datetime, lead_minutes: int, batch: int) -> list[Reminder]:
        """Orders whose window is open and ends within `lead_minutes`; each is claimed (reminded_at) once."""
        params = {"now": now, "lead_minutes": lead_minutes, "batch": batch}
        ids = [row[0] for row in self.session.execute(_DUE_REMINDERS, params)]
        if not ids:
            return []
        rows = self.session.execute(_REMINDER_ROWS, {"ids": ids}).mappings()
        return [
            Reminder(
                order_id=r["id"],
                pickup_code=r["pickup_code"],
                title=r["title"],
                pickup_end=r["pickup_end"],
                venue_name=r["venue_name"],
                address=r["address"],
                timezone=r["timezone"],
                chat_id=int(r["chat_id"]),
                language_code=r["language_code"],
            )
            for r in rows
        ]

    def offers_for_last_call(self, *, now: datetime, lead_minutes: int, batch: int) -> list[LastCall]:
        """Offers ending within `lead_minutes` with paid, uncollected orders (callers dedupe per offer)."""
        params = {"now": now, "lead_minutes": lead_minutes, "batch": batch}
        return [
            LastCall(
                offer_id=int(r["id"]),
                title=r["title"],
                timezone=r["timezone"],
                pickup_end=r["pickup_end"],
                owner_chat_id=int(r["owner_chat_id"]),
                owner_language=r["owner_language"],
                codes=list(r["codes"]),
            )
            for r in self.session.execute(_LAST_CALL_OFFERS, params).mappings()
        ]
