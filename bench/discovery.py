""" "Offers near me" with 100,000 live offers: our page query vs a raw GiST bounding-box query.

    python -m bench.discovery [--offers 100000] [--queries 300] [--radius-km 5]

Seeds N live offers (one item each) spread over ten cities of ~30 km across (dense, like a real market),
then asks for the first Near page from random points inside the cities, through our repository (exact
distances, lapsed holds counted back, business verified, window open, ordered by distance, with the total),
and, as the same-run baseline, a bare `SELECT id … WHERE point <@ box LIMIT 5` on the same index. Reports
p50/p95 of both and the ratio. Target (issue: benchmarks): p95 ≤ 20 ms on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from bench.common import Figure, Servers
from core.discovery import bounding_box
from db.discovery_repositories import SearchArea
from db.migrate import upgrade
from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from marketbot.embedded import EmbeddedServers
from marketbot.settings import normalize_database_url

CITIES = [
    (1.3521, 103.8198),  # Singapore
    (13.7563, 100.5018),  # Bangkok
    (-6.2088, 106.8456),  # Jakarta
    (3.1390, 101.6869),  # Kuala Lumpur
    (10.8231, 106.6297),  # Ho Chi Minh City
    (14.5995, 120.9842),  # Manila
    (21.0278, 105.8342),  # Hanoi
    (22.3193, 114.1694),  # Hong Kong
    (25.0330, 121.5654),  # Taipei
    (35.6762, 139.6503),  # Tokyo
]
SPREAD_DEG = 0.27  # ~30 km across


def _seed(factory: object, offers: int, now: datetime) -> None:
    with SqlAlchemyUnitOfWork(factory) as uow:  # type: ignore[arg-type]
        owner = uow.users.upsert_from_telegram(
            telegram_user_id=random.randint(10**9, 9 * 10**9),
            chat_id=None,
            first_name="Bench",
            username=None,
            language_code="en",
            now=now,
        )
        business = uow.businesses.create_with_venue(
            owner_user_id=owner.id,
            name="Bench chain",
            category="bakery",
            currency="SGD",
            contact_phone="+65 6000 0000",
            address="1 Bench Road",
            latitude=CITIES[0][0],
            longitude=CITIES[0][1],
            timezone="Asia/Singapore",
            now=now,
        )
        uow.businesses.set_status(business, "verified", now=now)
        per_city = offers // len(CITIES)
        for lat0, lon0 in CITIES:
            uow.session.execute(
                text(
                    """
                    WITH made AS (
                        INSERT INTO offers (business_id, venue_id, title, status, pickup_start, pickup_end,
                                            currency, latitude, longitude, published_at, created_at,
                                            updated_at)
                        SELECT :business, :venue, 'Bench ' || g, 'published', :start, :end, 'SGD',
                               :lat0 + (random() - 0.5) * :spread, :lon0 + (random() - 0.5) * :spread,
                               :now, :now, :now
                        FROM generate_series(1, :n) AS g
                        RETURNING id
                    )
                    INSERT INTO offer_items (offer_id, position, name, quantity_total, remaining,
                                             normal_price_minor, offer_price_minor, created_at, updated_at)
                    SELECT id, 0, 'Bag', 5, 5, 800, 300, :now, :now FROM made
                    """
                ),
                {
                    "business": business.id,
                    "venue": business.venues[0].id,
                    "start": now,
                    "end": now + timedelta(hours=6),
                    "lat0": lat0,
                    "lon0": lon0,
                    "spread": SPREAD_DEG,
                    "now": now,
                    "n": per_city,
                },
            )
        uow.commit()
        uow.session.execute(text("ANALYZE offers"))
        uow.session.execute(text("ANALYZE offer_items"))
        uow.commit()


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def measure(url: str, offers: int, queries: int, radius_km: float) -> tuple[list[float], list[float], float]:
    """Seed `offers` live offers into the (migrated, empty) database at `url` and time `queries` Near pages
    through our repository and the raw box query; returns (ours ms, raw ms, offers found on average)."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    started = time.monotonic()
    _seed(factory, offers, now)
    print(f"seeded {offers:,} live offers in {time.monotonic() - started:.1f} s")
    radius_m = int(radius_km * 1000)
    ours: list[float] = []
    raw: list[float] = []
    found = 0
    with SqlAlchemyUnitOfWork(factory) as uow:
        for _ in range(queries):
            lat0, lon0 = random.choice(CITIES)
            lat = lat0 + (random.random() - 0.5) * SPREAD_DEG * 0.8
            lon = lon0 + (random.random() - 0.5) * SPREAD_DEG * 0.8
            box = bounding_box(lat, lon, radius_m)
            area = SearchArea(lat, lon, radius_m, box.west, box.south, box.east, box.north)
            t0 = time.perf_counter()
            page = uow.discovery.nearby_page(area, tab="near", category=None, now=now, limit=5, offset=0)
            ours.append((time.perf_counter() - t0) * 1000)
            found += page.total
            t0 = time.perf_counter()
            uow.session.execute(
                text(
                    "SELECT id FROM offers WHERE status = 'published' AND latitude IS NOT NULL "
                    "AND point(longitude, latitude) <@ box(point(:w, :s), point(:e, :n)) LIMIT 5"
                ),
                {"w": box.west, "s": box.south, "e": box.east, "n": box.north},
            ).all()
            raw.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    return ours, raw, found / queries


def run(servers: Servers, quick: bool) -> list[Figure]:
    """For the suite (bench.suite): the same measurement on a database of its own."""
    offers, queries = (10_000, 50) if quick else (100_000, 300)
    ours, raw, found = measure(servers.database("discovery"), offers, queries, 5.0)
    ours_p50, ours_p95 = _percentiles(ours)
    raw_p50, raw_p95 = _percentiles(raw)
    return [
        Figure(
            "discovery",
            f"near page p95, {offers:,} live offers",
            ours_p95,
            "ms",
            "raw GiST box LIMIT 5 p95",
            raw_p95,
            ours_p95 / raw_p95,
            "≤ 20 ms",
            ours_p95 <= 20,
            f"p50 {ours_p50:.2f} ms (raw {raw_p50:.2f}); {found:,.0f} offers within 5 km on average",
        )
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--offers", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--radius-km", type=float, default=5.0)
    args = parser.parse_args()
    servers = EmbeddedServers(tempfile.mkdtemp(prefix="marketbot-bench-"))
    try:
        url = normalize_database_url(os.environ.get("DATABASE_URL") or servers.start_postgres())
        upgrade(url)
        ours, raw, found = measure(url, args.offers, args.queries, args.radius_km)
        ours_p50, ours_p95 = _percentiles(ours)
        raw_p50, raw_p95 = _percentiles(raw)
        print(f"offers within {args.radius_km:g} km of the asker: {found:,.0f} on average")
        print(f"near page (ours):     p50 {ours_p50:6.2f} ms   p95 {ours_p95:6.2f} ms")
        print(f"raw GiST box LIMIT 5: p50 {raw_p50:6.2f} ms   p95 {raw_p95:6.2f} ms")
        print(f"ratio ours/raw at p95: {ours_p95 / raw_p95:.1f}x   target: p95 <= 20 ms")
        return 0
    finally:
        servers.stop()


if __name__ == "__main__":
    raise SystemExit(main())
