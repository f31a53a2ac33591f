"""Releasing 100,000 lapsed holds: the beat job's use case vs one raw SQL statement doing the same.

    python -m bench.hold_expiry [--quick]

Seeds N held reservations, already lapsed, of one unit each over 100 offers (items' `remaining` lowered
to match), then times `tasks.maintenance.release_expired_holds` (what the beat job runs: batches of
HOLD_BATCH with SKIP LOCKED, units returned per item, open Checkout Sessions looked up) until all are
released. Baseline on the same data, re-seeded: one statement that expires every lapsed hold and returns
the units. Both end states are checked (no hold left, every unit back). Target (issue: benchmarks):
≤ 10 s and ≤ 3× raw.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg2

from bench.common import Figure, Servers, standalone
from bench.reservation import _libpq, _seed

HOLDS = 100_000

_SEED = """
WITH made AS (
    INSERT INTO reservations (id, user_id, offer_id, status, expires_at, total_minor, currency,
                              idempotency_key, created_at, updated_at)
    SELECT gen_random_uuid(), %(user)s, oi.offer_id, 'held', %(lapsed)s, 300, 'SGD',
           'bench-' || g || '-' || oi.id, %(created)s, %(created)s
    FROM generate_series(1, %(per_item)s) g CROSS JOIN offer_items oi WHERE oi.id = ANY(%(items)s)
    RETURNING id, offer_id
)
INSERT INTO reservation_items (reservation_id, offer_item_id, quantity, unit_price_minor)
SELECT made.id, oi.id, 1, 300 FROM made JOIN offer_items oi ON oi.offer_id = made.offer_id
"""

_RAW_RELEASE = """
WITH lapsed AS (
    UPDATE reservations SET status = 'expired', updated_at = %(now)s
    WHERE status = 'held' AND expires_at <= %(now)s
    RETURNING id
), freed AS (
    SELECT ri.offer_item_id, sum(ri.quantity) AS quantity
    FROM reservation_items ri JOIN lapsed ON lapsed.id = ri.reservation_id
    GROUP BY ri.offer_item_id
)
UPDATE offer_items SET remaining = LEAST(quantity_total, offer_items.remaining + freed.quantity),
                       updated_at = %(now)s
FROM freed WHERE offer_items.id = freed.offer_item_id
"""

STOCK = 10_000


def _reseed(url: str, user: int, items: list[int], holds: int, now: datetime) -> None:
    conn = psycopg2.connect(_libpq(url))
    try:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM reservation_items")
            cur.execute("DELETE FROM reservations")
            per_item = holds // len(items)
            cur.execute(
                "UPDATE offer_items SET quantity_total = %s, remaining = %s WHERE id = ANY(%s)",
                (STOCK, STOCK - per_item, items),
            )
            cur.execute(
                _SEED,
                {
                    "user": user,
                    "lapsed": now - timedelta(minutes=1),
                    "created": now - timedelta(minutes=16),
                    "per_item": per_item,
                    "items": items,
                },
            )
        conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        conn.close()


def _check(url: str, items: list[int]) -> tuple[int, int]:
    """(holds still held, units not returned)."""
    conn = psycopg2.connect(_libpq(url))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM reservations WHERE status = 'held'")
            held = int(cur.fetchone()[0])
            cur.execute(
                "SELECT coalesce(sum(quantity_total - remaining), 0) FROM offer_items WHERE id = ANY(%s)",
                (items,),
            )
            missing = int(cur.fetchone()[0])
            return held, missing
    finally:
        conn.close()


def run(servers: Servers, quick: bool) -> list[Figure]:
    from db.session import make_engine, make_session_factory
    from db.uow import SqlAlchemyUnitOfWork
    from tasks.maintenance import release_expired_holds

    url = servers.database("hold_expiry")
    now = datetime.now(UTC)
    users, _hot, items = _seed(url, now)
    holds = 5_000 if quick else HOLDS
    _reseed(url, users[0], items, holds, now)
    conn = psycopg2.connect(_libpq(url))
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(_RAW_RELEASE, {"now": now})
    conn.commit()
    raw_s = time.perf_counter() - t0
    conn.close()
    raw_left = _check(url, items)
    _reseed(url, users[0], items, holds, now)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    t0 = time.perf_counter()
    result = release_expired_holds(lambda: SqlAlchemyUnitOfWork(factory), now=now)
    ours_s = time.perf_counter() - t0
    engine.dispose()
    ours_left = _check(url, items)
    ratio = ours_s / raw_s
    ok = result.count == holds and ours_left == (0, 0) and raw_left == (0, 0)
    return [
        Figure(
            "hold expiry",
            f"release {holds:,} lapsed holds (beat job's use case)",
            ours_s,
            "s",
            "one raw UPDATE … RETURNING statement",
            raw_s,
            ratio,
            "≤ 10 s and ≤ 3× raw",
            ours_s <= 10 and ratio <= 3 and ok,
            f"released {result.count:,}; left held/units missing: ours {ours_left}, raw {raw_left}",
        )
    ]


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
