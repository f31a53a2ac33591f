"""Holding units for a buyer: correct with any number of concurrent buyers, workers and retries.

A hold is one statement (`_HOLD`, one round trip), which takes every line or none:

- The offer row is read FOR SHARE with the on-sale condition in its WHERE: a concurrent pause or cancel
  (FOR UPDATE) waits for the hold or happens before it, never in the middle; one that commits while we wait
  for the lock is seen, because READ COMMITTED re-checks the WHERE on the row as it is once locked.
- The lines' offer items are locked in id order (as every buyer and the release sweep lock them, so no
  deadlock), and read as they are once locked. Only if every line fits is the reservation inserted and each
  line's `remaining` lowered (invariant 1), from the locked rows; `CHECK (remaining >= 0)` is the backstop.
  A line that does not fit takes nothing (no line does: the caller's transaction stays usable) and SoldOut
  names the first such item.
- The idempotency key (from the Buy command) makes a double tap or a redelivered task find the same hold:
  the insert is `ON CONFLICT (idempotency_key) DO NOTHING` and nothing is taken unless it inserted. A hold
  that made nothing looks the key up before it refuses, so a repeated request still finds its hold after
  the last unit went or the offer was paused.

Lapsed holds never block a sale: availability ignores them (see discovery), and when a hold comes up short
the offer's lapsed holds are reclaimed (status → expired, units back) and the hold is tried once more. That
reclaim runs while this transaction already holds the lines' item rows, so it must never wait for a lock
(waiting on a reservation row or a lower item id held by the sweep, a payment or another buyer who waits for
our items would deadlock): it skips rows others hold (SKIP LOCKED), and a lapsed hold whose items it cannot
all lock stays for whoever holds them, the sweep or the next buyer. The price: a buyer who comes up short
at the very moment the sweep is returning a lapsed hold's units is told sold out. Two buyers reclaiming at
once cannot return units twice: a reservation row is reclaimed by the one transaction that locked it while
still held. The retry waits for nothing either: it locks the rows this transaction already holds.

`_HOLD` is a server-side prepared statement (PREPARE once per connection, then EXECUTE): parsing and
planning its CTEs were about half of the server's CPU per hold. This needs a session-level connection to
PostgreSQL (not a transaction-pooling proxy such as PgBouncer in transaction mode).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from core.reservations import Line, OfferNotOnSale, SoldOut
from db.models import Reservation

_HOLD_SQL = """
    WITH offer AS (
        SELECT id, currency FROM offers
        WHERE id = :offer_id AND status = 'published' AND pickup_end > :now
        FOR SHARE
    ), wanted AS (
        SELECT * FROM unnest(:item_ids, :quantities) AS w(offer_item_id, quantity)
    ), locked AS (
        -- LockRows runs above the sort: the rows are locked in id order.
        SELECT oi.id, oi.remaining, oi.offer_price_minor, wanted.quantity
        FROM offer_items oi JOIN wanted ON wanted.offer_item_id = oi.id
        WHERE oi.offer_id = (SELECT id FROM offer)
        ORDER BY oi.id
        FOR NO KEY UPDATE OF oi
    ), short AS (
        -- The first line (in id order) that cannot be had: not an item of this offer, or too few left.
        SELECT min(wanted.offer_item_id) AS offer_item_id
        FROM wanted LEFT JOIN locked ON locked.id = wanted.offer_item_id
        WHERE locked.id IS NULL OR locked.remaining < wanted.quantity
    ), reservation AS (
        INSERT INTO reservations (id, user_id, offer_id, status, expires_at, total_minor, currency,
                                  idempotency_key, created_at, updated_at)
        SELECT :reservation_id, :user_id, offer.id, 'held', :expires_at,
               (SELECT coalesce(sum(locked.offer_price_minor * locked.quantity), 0) FROM locked),
               offer.currency, :idempotency_key, :now, :now
        FROM offer
        WHERE (SELECT offer_item_id FROM short) IS NULL
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id, total_minor, currency
    ), taken AS (
        -- From the locked row's `remaining`, which nobody can change now, not from `oi`: this UPDATE scans
        -- the statement's snapshot, which may predate units given back before we locked the row, and
        -- PostgreSQL checks constraints on that first version of the new row before it finds the newer one
        -- (a spurious CHECK violation). No `remaining >= quantity` filter either: `short` checked the locked
        -- rows, and a row a stale filter skipped would leave units held but not taken.
        UPDATE offer_items oi SET remaining = locked.remaining - locked.quantity, updated_at = :now
        FROM locked
        WHERE oi.id = locked.id AND EXISTS (SELECT FROM reservation)
        RETURNING oi.id, locked.quantity, oi.offer_price_minor
    ), held_items AS (
        INSERT INTO reservation_items (reservation_id, offer_item_id, quantity, unit_price_minor)
        SELECT reservation.id, taken.id, taken.quantity, taken.offer_price_minor
        FROM reservation CROSS JOIN taken
    )
    SELECT (SELECT id FROM reservation) AS reservation_id,
           (SELECT total_minor FROM reservation) AS total_minor,
           (SELECT currency FROM reservation) AS currency,
           EXISTS (SELECT FROM offer) AS on_sale,
           (SELECT offer_item_id FROM short) AS short_item_id
"""

# The prepared statement's parameters, in order, with their types.
_HOLD_PARAMETERS = (
    ("offer_id", "bigint"),
    ("item_ids", "bigint[]"),
    ("quantities", "integer[]"),
    ("reservation_id", "uuid"),
    ("user_id", "bigint"),
    ("expires_at", "timestamptz"),
    ("idempotency_key", "text"),
    ("now", "timestamptz"),
)
_POSITION = {name: index for index, (name, _) in enumerate(_HOLD_PARAMETERS, start=1)}
_PREPARE_HOLD = "PREPARE marketbot_hold({}) AS {}".format(
    ", ".join(sql_type for _, sql_type in _HOLD_PARAMETERS),
    re.sub(r"(?<![:\w]):(\w+)", lambda m: f"${_POSITION[m.group(1)]}", _HOLD_SQL),
)
_EXECUTE_HOLD = "EXECUTE marketbot_hold({})".format(", ".join(f"%({name})s" for name, _ in _HOLD_PARAMETERS))
# Set in the pooled DBAPI connection's info once it has the statement; SQLAlchemy clears that dict whenever
# the connection is replaced (reconnect, recycle, invalidation), so a new connection prepares again.
_PREPARED = "marketbot_hold_prepared"

# Never waits for a lock (see the module docstring): only lapsed holds it can lock, and only those whose
# every item row it can lock too (the rows this transaction holds already count as lockable).
_RECLAIM_LAPSED = text(
    """
    WITH lapsed AS (
        SELECT id FROM reservations
        WHERE offer_id = :offer_id AND status = 'held' AND expires_at <= :now
        FOR UPDATE SKIP LOCKED
    ), lapsed_items AS (
        SELECT ri.reservation_id, ri.offer_item_id, ri.quantity
        FROM reservation_items ri JOIN lapsed ON lapsed.id = ri.reservation_id
    ), lockable AS (
        SELECT id FROM offer_items WHERE id IN (SELECT offer_item_id FROM lapsed_items)
        ORDER BY id
        FOR NO KEY UPDATE SKIP LOCKED
    ), reclaimed AS (
        UPDATE reservations r SET status = 'expired', updated_at = :now
        FROM lapsed
        WHERE r.id = lapsed.id
          AND NOT EXISTS (
              SELECT FROM lapsed_items li
              WHERE li.reservation_id = lapsed.id AND li.offer_item_id NOT IN (SELECT id FROM lockable)
          )
        RETURNING r.id
    ), freed AS (
        SELECT li.offer_item_id, sum(li.quantity) AS quantity
        FROM lapsed_items li JOIN reclaimed ON reclaimed.id = li.reservation_id
        GROUP BY li.offer_item_id
    )
    UPDATE offer_items SET remaining = offer_items.remaining + freed.quantity, updated_at = :now
    FROM freed WHERE offer_items.id = freed.offer_item_id
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
        """Hold every line or none: a Hold, or OfferNotOnSale / SoldOut with nothing taken.

        Raw SQL throughout, so no Reservation enters the session's identity map: code that reads the hold
        afterwards loads it from the database.
        """
        # Raw SQL does not autoflush: write pending ORM changes first, in the order the ORM queries did.
        self.session.flush()
        quantities: dict[int, int] = {}
        for line in lines:  # one row per item, whatever the caller passed (validate_lines merges them too)
            quantities[line.offer_item_id] = quantities.get(line.offer_item_id, 0) + line.quantity
        parameters = {
            "offer_id": offer_id,
            "item_ids": list(quantities),
            "quantities": list(quantities.values()),
            "reservation_id": uuid.uuid4(),
            "user_id": user_id,
            "expires_at": expires_at,
            "idempotency_key": idempotency_key,
            "now": now,
        }
        connection = self.session.connection()
        row = _execute_hold(connection, parameters)
        if (
            row.reservation_id is None
            and row.on_sale
            and row.short_item_id is not None
            and connection.execute(_RECLAIM_LAPSED, {"offer_id": offer_id, "now": now}).rowcount
        ):
            row = _execute_hold(connection, parameters)  # lapsed holds gave units back: once more
        if row.reservation_id is not None:
            return Hold(row.reservation_id, int(row.total_minor), row.currency, expires_at, created=True)
        # Nothing made: the key's earlier hold (double tap, redelivered task) wins over any refusal.
        earlier = self.session.execute(
            select(
                Reservation.id, Reservation.total_minor, Reservation.currency, Reservation.expires_at
            ).where(Reservation.idempotency_key == idempotency_key)
        ).one_or_none()
        if earlier is not None:
            return Hold(earlier.id, earlier.total_minor, earlier.currency, earlier.expires_at, created=False)
        if not row.on_sale:
            raise OfferNotOnSale(offer_id=offer_id)
        if row.short_item_id is None:  # the key conflicted, yet no row has it: cannot happen
            raise RuntimeError(f"hold with key {idempotency_key!r} neither inserted nor found")
        short = int(row.short_item_id)
        raise SoldOut(offer_item_id=short, quantity=quantities[short])


def _execute_hold(connection: Connection, parameters: dict[str, Any]) -> Any:
    if not connection.info.get(_PREPARED):
        connection.exec_driver_sql(_PREPARE_HOLD)
        connection.info[_PREPARED] = True
    return connection.exec_driver_sql(_EXECUTE_HOLD, parameters).one()
