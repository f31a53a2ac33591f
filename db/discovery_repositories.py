"""What customers can find: live offers around a point, one page per round trip, and one offer's detail.

No PostGIS here: `point(longitude, latitude) <@ box(...)` walks the partial GiST index ix_offers_live_location
(its predicate `status = 'published' AND latitude IS NOT NULL` is repeated literally so the planner can use
it), then the exact haversine distance filters the box's corners out and orders the rest.

"Units left" is `remaining` plus the units of holds that have lapsed but were not reclaimed yet (the hold
path reclaims them lazily, the sweep later): expiry is a query condition, so a late sweep never hides stock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from sqlalchemy import text
from sqlalchemy.orm import Session

SortTab = Literal["near", "latest", "popular", "ending"]

# Metres; the same formula as core.discovery.haversine_m. least(1, …) guards asin against rounding.
_DISTANCE = """
    2 * 6371008.8 * asin(least(1.0, sqrt(
        power(sin(radians(o.latitude - :lat) / 2), 2)
        + cos(radians(:lat)) * cos(radians(o.latitude)) * power(sin(radians(o.longitude - :lon) / 2), 2)
    )))
"""

# Units in holds that have lapsed but were not reclaimed yet, per item: few rows (the release sweep runs every
# minute), computed once per query and hash-joined, instead of once per item of every candidate offer.
_LAPSED = """
    SELECT ri.offer_item_id, sum(ri.quantity) AS quantity
    FROM reservations r JOIN reservation_items ri ON ri.reservation_id = r.id
    WHERE r.status = 'held' AND r.expires_at <= :now
    GROUP BY ri.offer_item_id
"""

_ORDER_BY: Final[dict[SortTab, str]] = {
    "near": "distance_m, id",
    "latest": "published_at DESC, id DESC",
    "popular": "taken DESC, distance_m, id",
    "ending": "pickup_end, distance_m, id",
}

# Two steps: stock totals (cheap sums) for every offer in the circle, to filter, order, page and count;
# then prices (the cheapest item still available) only for the page's rows.
_PAGE_SQL = """
WITH lapsed AS ({lapsed}),
nearby AS (
    SELECT * FROM (
        SELECT o.id, o.title, o.pickup_start, o.pickup_end, o.published_at, o.currency,
               b.name AS business, v.timezone, {distance} AS distance_m
        FROM offers o
        JOIN businesses b ON b.id = o.business_id
        JOIN venues v ON v.id = o.venue_id
        WHERE o.status = 'published' AND o.latitude IS NOT NULL
          AND point(o.longitude, o.latitude) <@ box(point(:west, :south), point(:east, :north))
          AND o.pickup_end > :now
          AND b.status = 'verified'
          AND (CAST(:category AS text) IS NULL OR b.category = :category)
    ) circle
    WHERE distance_m <= :radius_m
), stocked AS (
    -- Grouped by the offer's own columns: `nearby` is read once (a second read would materialize it,
    -- and the planner, blind to its size, would then loop over it per offer).
    SELECT n.id, n.title, n.pickup_start, n.pickup_end, n.published_at, n.currency, n.business,
           n.timezone, n.distance_m,
           sum(oi.remaining + coalesce(l.quantity, 0)) AS available,
           sum(oi.quantity_total - oi.remaining - coalesce(l.quantity, 0)) AS taken
    FROM nearby n
    JOIN offer_items oi ON oi.offer_id = n.id
    LEFT JOIN lapsed l ON l.offer_item_id = oi.id
    GROUP BY n.id, n.title, n.pickup_start, n.pickup_end, n.published_at, n.currency, n.business,
             n.timezone, n.distance_m
), page AS (
    SELECT *, count(*) OVER () AS total
    FROM stocked
    WHERE available > 0
    ORDER BY {order_by}
    LIMIT :limit OFFSET :offset
)
SELECT page.*, p.price_minor, p.normal_minor, p.prices
FROM page
CROSS JOIN LATERAL (
    SELECT (array_agg(a.offer_price_minor ORDER BY a.offer_price_minor, a.position))[1] AS price_minor,
           (array_agg(a.normal_price_minor ORDER BY a.offer_price_minor, a.position))[1] AS normal_minor,
           count(DISTINCT a.offer_price_minor) AS prices
    FROM (
        SELECT oi.position, oi.offer_price_minor, oi.normal_price_minor
        FROM offer_items oi LEFT JOIN lapsed l ON l.offer_item_id = oi.id
        WHERE oi.offer_id = page.id AND oi.remaining + coalesce(l.quantity, 0) > 0
    ) a
) p
ORDER BY {order_by}
"""


def _page_sql(tab: SortTab) -> str:
    return _PAGE_SQL.format(distance=_DISTANCE, lapsed=_LAPSED, order_by=_ORDER_BY[tab])


@dataclass(frozen=True)
class NearbyOffer:
    offer_id: int
    title: str
    business: str
    distance_m: float
    price_minor: int
    normal_price_minor: int
    several_prices: bool
    currency: str
    units_left: int
    pickup_start: datetime
    pickup_end: datetime
    timezone: str


@dataclass(frozen=True)
class NearbyPage:
    offers: list[NearbyOffer]
    total: int  # matching offers in all pages; 0 when this page is past the end (the caller re-asks)


@dataclass(frozen=True)
class OfferItemStock:
    name: str
    normal_price_minor: int
    offer_price_minor: int
    available: int


@dataclass(frozen=True)
class OfferForCustomer:
    offer_id: int
    title: str
    description: str | None
    photo_file_id: str | None
    status: str
    pickup_start: datetime
    pickup_end: datetime
    currency: str
    dietary_tags: tuple[str, ...]
    per_order_limit: int | None
    latitude: float | None
    longitude: float | None
    business: str
    business_status: str
    address: str | None
    timezone: str
    items: tuple[OfferItemStock, ...]

    @property
    def units_left(self) -> int:
        return sum(item.available for item in self.items)


@dataclass(frozen=True)
class SearchArea:
    latitude: float
    longitude: float
    radius_m: float
    west: float
    south: float
    east: float
    north: float


def _page_params(
    area: SearchArea, *, category: str | None, now: datetime, limit: int, offset: int
) -> dict[str, object]:
    return {
        "lat": area.latitude,
        "lon": area.longitude,
        "west": area.west,
        "south": area.south,
        "east": area.east,
        "north": area.north,
        "radius_m": area.radius_m,
        "category": category,
        "now": now,
        "limit": limit,
        "offset": offset,
    }


class DiscoveryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def nearby_page(
        self,
        area: SearchArea,
        *,
        tab: SortTab,
        category: str | None,
        now: datetime,
        limit: int,
        offset: int,
    ) -> NearbyPage:
        """One page of live offers within the area, in the tab's order, with the total (window count)."""
        rows = self.session.execute(
            text(_page_sql(tab)),
            _page_params(area, category=category, now=now, limit=limit, offset=offset),
        ).mappings()
        offers: list[NearbyOffer] = []
        total = 0
        for row in rows:
            total = int(row["total"])
            offers.append(
                NearbyOffer(
                    offer_id=row["id"],
                    title=row["title"],
                    business=row["business"],
                    distance_m=float(row["distance_m"]),
                    price_minor=int(row["price_minor"]),
                    normal_price_minor=int(row["normal_minor"]),
                    several_prices=int(row["prices"]) > 1,
                    currency=row["currency"],
                    units_left=int(row["available"]),
                    pickup_start=row["pickup_start"],
                    pickup_end=row["pickup_end"],
                    timezone=row["timezone"],
                )
            )
        return NearbyPage(offers, total)

    def nearby_query_plan(self, area: SearchArea, *, tab: SortTab, now: datetime) -> str:
        """EXPLAIN of the page query (tests and operators check that it walks the GiST index)."""
        sql = text("EXPLAIN " + _page_sql(tab))
        params = _page_params(area, category=None, now=now, limit=5, offset=0)
        return "\n".join(str(line) for line in self.session.scalars(sql, params))

    def offer_for_customer(self, offer_id: int, *, now: datetime) -> OfferForCustomer | None:
        """An offer with its business, venue and per-item stock, whatever its status (None if unknown)."""
        head = (
            self.session.execute(
                text(
                    """
                    SELECT o.id, o.title, o.description, o.photo_file_id, o.status, o.pickup_start,
                           o.pickup_end, o.currency, o.dietary_tags, o.per_order_limit, o.latitude,
                           o.longitude, b.name AS business, b.status AS business_status, v.address,
                           v.timezone
                    FROM offers o
                    JOIN businesses b ON b.id = o.business_id
                    JOIN venues v ON v.id = o.venue_id
                    WHERE o.id = :offer_id
                    """
                ),
                {"offer_id": offer_id},
            )
            .mappings()
            .one_or_none()
        )
        if head is None:
            return None
        items = self.session.execute(
            text(
                f"""
                WITH lapsed AS ({_LAPSED})
                SELECT oi.name, oi.normal_price_minor, oi.offer_price_minor,
                       oi.remaining + coalesce(l.quantity, 0) AS available
                FROM offer_items oi LEFT JOIN lapsed l ON l.offer_item_id = oi.id
                WHERE oi.offer_id = :offer_id ORDER BY oi.position
                """
            ),
            {"offer_id": offer_id, "now": now},
        ).mappings()
        return OfferForCustomer(
            offer_id=head["id"],
            title=head["title"],
            description=head["description"],
            photo_file_id=head["photo_file_id"],
            status=head["status"],
            pickup_start=head["pickup_start"],
            pickup_end=head["pickup_end"],
            currency=head["currency"],
            dietary_tags=tuple(head["dietary_tags"] or ()),
            per_order_limit=head["per_order_limit"],
            latitude=head["latitude"],
            longitude=head["longitude"],
            business=head["business"],
            business_status=head["business_status"],
            address=head["address"],
            timezone=head["timezone"],
            items=tuple(
                OfferItemStock(
                    r["name"], int(r["normal_price_minor"]), int(r["offer_price_minor"]), int(r["available"])
                )
                for r in items
            ),
        )

    def search_radius_m(self, user_id: int) -> int | None:
        radius = self.session.scalar(
            text("SELECT search_radius_m FROM users WHERE id = :id"), {"id": user_id}
        )
        return None if radius is None else int(radius)

    def location_of(self, user_id: int) -> tuple[float, float] | None:
        row = self.session.execute(
            text("SELECT latitude, longitude FROM users WHERE id = :id"), {"id": user_id}
        ).one_or_none()
        if row is None or row[0] is None or row[1] is None:
            return None
        return float(row[0]), float(row[1])

    def set_search_radius(self, user_id: int, radius_m: int, now: datetime) -> None:
        self.session.execute(
            text("UPDATE users SET search_radius_m = :radius, updated_at = :now WHERE id = :id"),
            {"radius": radius_m, "now": now, "id": user_id},
        )
