"""Reserving units: our hold use case vs a raw conditional UPDATE, 16 concurrent clients.

    python -m bench.reservation [--quick]

Each client is its own process (as workers are) with its own connection. "Ours" is the whole use case as a
worker runs it: `SqlAlchemyUnitOfWork` → `ReservationRepository.hold` (idempotency look-up, offer read FOR
SHARE, lapsed holds reclaimed, conditional UPDATE per line, reservation rows inserted) → commit. The
same-run baseline is one raw `UPDATE offer_items SET remaining = remaining - 1 WHERE id = … AND remaining
>= 1 RETURNING …` per transaction over psycopg2. A third run, for the record and with no target of its own,
executes our hold's own prepared statement over bare psycopg2 (no SQLAlchemy, no unit of work): what a hold
costs the database, so the gap splits into the work a hold must do and what our code adds to it. Two shapes:
every client on one hot offer, and clients spread over 100 offers. Then a sell-out race (the same 16
clients, 100 units) checks that nothing is oversold. Target (issue: benchmarks): ours ≥ 50% of raw
throughput, zero oversell.
"""

from __future__ import annotations

import multiprocessing
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from bench.common import Figure, Servers, standalone

CLIENTS = 16
SPREAD_OFFERS = 100
BIG_STOCK = 1_000_000_000
SELLOUT_STOCK = 100


def _seed(url: str, now: datetime) -> tuple[list[int], int, list[int]]:
    """Users for the clients, the hot offer's item, and the 100 other offers' items (one item each)."""
    from db.session import make_engine, make_session_factory
    from db.uow import SqlAlchemyUnitOfWork

    engine = make_engine(url)
    try:
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            users = [
                uow.users.upsert_from_telegram(
                    telegram_user_id=10**9 + i,
                    chat_id=None,
                    first_name="Bench",
                    username=None,
                    language_code="en",
                    now=now,
                ).id
                for i in range(CLIENTS)
            ]
            business = uow.businesses.create_with_venue(
                owner_user_id=users[0],
                name="Bench bakery",
                category="bakery",
                currency="SGD",
                contact_phone="+65 6000 0000",
                address="1 Bench Road",
                latitude=1.3,
                longitude=103.8,
                timezone="Asia/Singapore",
                now=now,
            )
            uow.businesses.set_status(business, "verified", now=now)
            rows = uow.session.execute(
                text(
                    """
                    WITH made AS (
                        INSERT INTO offers (business_id, venue_id, title, status, pickup_start, pickup_end,
                                            currency, latitude, longitude, published_at, created_at,
                                            updated_at)
                        SELECT :business, :venue, 'Bench ' || g, 'published', :start, :end, 'SGD', 1.3, 103.8,
                               :now, :now, :now
                        FROM generate_series(1, :n) AS g
                        RETURNING id
                    )
                    INSERT INTO offer_items (offer_id, position, name, quantity_total, remaining,
                                             normal_price_minor, offer_price_minor, created_at, updated_at)
                    SELECT id, 0, 'Bag', :stock, :stock, 800, 300, :now, :now FROM made
                    RETURNING id, offer_id
                    """
                ),
                {
                    "business": business.id,
                    "venue": business.venues[0].id,
                    "start": now,
                    "end": now + timedelta(hours=6),
                    "now": now,
                    "n": SPREAD_OFFERS + 1,
                    "stock": BIG_STOCK,
                },
            ).all()
            uow.commit()
    finally:
        engine.dispose()
    items = sorted((int(r[0]), int(r[1])) for r in rows)
    return users, items[0][0], [item for item, _ in items[1:]]


def _offer_of(url: str) -> dict[int, int]:
    import psycopg2

    conn = psycopg2.connect(_libpq(url))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, offer_id FROM offer_items")
            return {int(a): int(b) for a, b in cur.fetchall()}
    finally:
        conn.close()


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://")


def _client(
    kind: str,
    url: str,
    user_id: int,
    items: list[int],
    offers: dict[int, int],
    start_at: float,
    seconds: float,
) -> tuple[int, int]:
    """One client process: hold one unit after another until `seconds` pass (or, on a single finite offer,
    until it is sold out); returns (held, sold out)."""
    held = sold_out = 0
    rng = random.Random(user_id)
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = start_at + seconds
    if kind == "statement":
        return _statement_client(url, user_id, items, offers, deadline, rng)
    if kind == "raw":
        import psycopg2

        conn = psycopg2.connect(_libpq(url))
        with conn.cursor() as cur:
            while time.time() < deadline:
                item = rng.choice(items)
                cur.execute(
                    "UPDATE offer_items SET remaining = remaining - 1, updated_at = now() "
                    "WHERE id = %s AND remaining >= 1 RETURNING offer_price_minor",
                    (item,),
                )
                row = cur.fetchone()
                conn.commit()
                if row is None:
                    sold_out += 1
                else:
                    held += 1
        conn.close()
        return held, sold_out
    from core.reservations import Line, SoldOut
    from db.session import make_engine, make_session_factory
    from db.uow import SqlAlchemyUnitOfWork

    engine = make_engine(url, pool_size=1, max_overflow=0)
    factory = make_session_factory(engine)
    while time.time() < deadline:
        item = rng.choice(items)
        now = datetime.now(UTC)
        try:
            with SqlAlchemyUnitOfWork(factory) as uow:
                uow.reservations.hold(
                    user_id=user_id,
                    offer_id=offers[item],
                    lines=[Line(item, 1)],
                    idempotency_key=uuid.uuid4().hex,
                    expires_at=now + timedelta(minutes=15),
                    now=now,
                )
                uow.commit()
            held += 1
        except SoldOut:
            sold_out += 1
            if len(items) == 1:
                break  # the sell-out race: this client saw the last unit go
    engine.dispose()
    return held, sold_out


def _statement_client(
    url: str, user_id: int, items: list[int], offers: dict[int, int], deadline: float, rng: random.Random
) -> tuple[int, int]:
    """Our hold's statement (db.reservation_repositories), prepared and executed over bare psycopg2."""
    import psycopg2

    from db.reservation_repositories import _EXECUTE_HOLD, _PREPARE_HOLD

    held = sold_out = 0
    conn = psycopg2.connect(_libpq(url))
    with conn.cursor() as cur:
        cur.execute(_PREPARE_HOLD)
        conn.commit()
        while time.time() < deadline:
            item = rng.choice(items)
            now = datetime.now(UTC)
            cur.execute(
                _EXECUTE_HOLD,
                {
                    "offer_id": offers[item],
                    "item_ids": [item],
                    "quantities": [1],
                    "reservation_id": str(uuid.uuid4()),
                    "user_id": user_id,
                    "expires_at": now + timedelta(minutes=15),
                    "idempotency_key": uuid.uuid4().hex,
                    "now": now,
                },
            )
            row = cur.fetchone()
            conn.commit()
            if row is not None and row[0] is not None:
                held += 1
            else:
                sold_out += 1
    conn.close()
    return held, sold_out


def _race(kind: str, url: str, users: list[int], items: list[int], seconds: float) -> tuple[float, int]:
    """All clients at once for `seconds`; returns (holds per second, holds made)."""
    offers = _offer_of(url)
    ctx = multiprocessing.get_context("fork")
    start_at = time.time() + 1.0  # every process connected and waiting before the clock starts
    with ctx.Pool(CLIENTS) as pool:
        results = pool.starmap(
            _client, [(kind, url, user, items, offers, start_at, seconds) for user in users]
        )
    held = sum(h for h, _ in results)
    return held / seconds, held


def _oversold(url: str, item_ids: list[int]) -> int:
    """Units held beyond what was offered (0 when the books balance), over the given items."""
    import psycopg2

    conn = psycopg2.connect(_libpq(url))
    try:
        with conn.cursor() as cur:
            cur.execute(
                """
                SELECT coalesce(sum(greatest(held.units - oi.quantity_total, 0)
                                    + abs(oi.quantity_total - held.units - oi.remaining)), 0)
                FROM offer_items oi
                LEFT JOIN LATERAL (
                    SELECT coalesce(sum(ri.quantity), 0) AS units FROM reservation_items ri
                    WHERE ri.offer_item_id = oi.id
                ) held ON true
                WHERE oi.id = ANY(%s)
                """,
                (item_ids,),
            )
            row = cur.fetchone()
            return int(row[0]) if row else -1
    finally:
        conn.close()


def _set_stock(url: str, item_ids: list[int], stock: int) -> None:
    import psycopg2

    conn = psycopg2.connect(_libpq(url))
    try:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM reservation_items WHERE offer_item_id = ANY(%s)", (item_ids,))
            cur.execute(
                "DELETE FROM reservations r WHERE NOT EXISTS "
                "(SELECT 1 FROM reservation_items ri WHERE ri.reservation_id = r.id)"
            )
            cur.execute(
                "UPDATE offer_items SET quantity_total = %s, remaining = %s WHERE id = ANY(%s)",
                (stock, stock, item_ids),
            )
        conn.commit()
        with conn.cursor() as cur:
            conn.autocommit = True
            cur.execute("VACUUM ANALYZE")
    finally:
        conn.close()


def run(servers: Servers, quick: bool) -> list[Figure]:
    url = servers.database("reservation")
    now = datetime.now(UTC)
    users, hot, spread = _seed(url, now)
    seconds = 2.0 if quick else 10.0
    figures: list[Figure] = []
    for shape, items in (("one hot offer", [hot]), ("100 offers", spread)):
        _set_stock(url, items, BIG_STOCK)
        raw_tps, _ = _race("raw", url, users, items, seconds)
        _set_stock(url, items, BIG_STOCK)
        ours_tps, _ = _race("ours", url, users, items, seconds)
        _set_stock(url, items, BIG_STOCK)
        statement_tps, _ = _race("statement", url, users, items, seconds)
        ratio = ours_tps / raw_tps if raw_tps else 0.0
        figures.append(
            Figure(
                "reservation",
                f"holds/s, {CLIENTS} clients, {shape}",
                ours_tps,
                "holds/s",
                "raw conditional UPDATE … RETURNING",
                raw_tps,
                ratio,
                "≥ 50% of raw",
                ratio >= 0.5,
            )
        )
        figures.append(
            Figure(
                "reservation",
                f"holds/s, {CLIENTS} clients, {shape}: our hold statement alone over psycopg2",
                statement_tps,
                "holds/s",
                "raw conditional UPDATE … RETURNING",
                raw_tps,
                statement_tps / raw_tps if raw_tps else 0.0,
                note=f"ours is {ours_tps / statement_tps:.2f}× of this" if statement_tps else "",
            )
        )
        figures.append(
            Figure(
                "reservation",
                f"units oversold, {shape} (throughput run)",
                _oversold(url, items),
                "units",
                target="0",
                passed=_oversold(url, items) == 0,
            )
        )
    # The sell-out race: more demand than stock on the hot offer.
    _set_stock(url, [hot], SELLOUT_STOCK)
    _, held = _race("ours", url, users, [hot], 60.0)  # each client stops at its first "sold out"
    oversold = _oversold(url, [hot]) + max(held - SELLOUT_STOCK, 0)
    figures.append(
        Figure(
            "reservation",
            f"units oversold, {CLIENTS} clients racing for {SELLOUT_STOCK} units",
            oversold,
            "units",
            target="0",
            passed=oversold == 0 and held == SELLOUT_STOCK,
            note=f"{held} units held of {SELLOUT_STOCK}",
        )
    )
    return figures


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
