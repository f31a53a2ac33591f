"""`marketbot demo-data`: a few verified businesses with published offers in the demo city (Singapore), so a
customer trying the product finds food nearby instead of an empty list.

Idempotent: businesses are keyed by their (made-up) owners' Telegram ids and offers by business and title.
Running it again creates only what is missing — a demo offer whose pickup window has ended is replaced by a
new one for the next window — and refreshes the live ones' photos.

Photos go through the Bot API like any photo the bot sends: each generated PNG is uploaded with sendPhoto to
the demo owner's chat and the offer keeps the file_id Telegram answers with. With the local Telegram
stand-in that also makes the pictures show in the sandbox page; uploads are redone on every run because the
stand-in forgets its files when it restarts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from db.models import Offer
from db.offer_repositories import NewItem
from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from marketbot.sandbox import city
from marketbot.sandbox.pictures import food_png


@dataclass(frozen=True)
class DemoOffer:
    title: str
    description: str
    picture: str
    window: tuple[str, str]  # local pickup start and end, "HH:MM"
    items: tuple[NewItem, ...]
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoBusiness:
    owner_telegram_id: int
    owner_name: str
    name: str
    category: str
    address: str
    latitude: float
    longitude: float
    phone: str
    offers: tuple[DemoOffer, ...]


BUSINESSES: tuple[DemoBusiness, ...] = (
    DemoBusiness(
        900_001,
        "Mei",
        "Chinatown Kopi & Bakes",
        "bakery",
        "48 Pagoda Street, Singapore 059207",
        1.2836,
        103.8441,
        "+65 6221 0001",
        (
            DemoOffer(
                "Evening bread bag",
                "Today's loaves and buns, baked this morning.",
                "bread",
                ("19:00", "21:00"),
                (NewItem("Sourdough loaf", 4, 750, 300), NewItem("Kaya buns (2 pcs)", 6, 400, 180)),
                ("vegetarian",),
            ),
            DemoOffer(
                "Pastry box",
                "Croissants and egg tarts from the morning bake.",
                "pastry",
                ("17:30", "19:00"),
                (NewItem("Butter croissant", 8, 320, 150), NewItem("Egg tart", 10, 220, 100)),
                ("vegetarian",),
            ),
        ),
    ),
    DemoBusiness(
        900_002,
        "Kenji",
        "Marina Sushi Counter",
        "restaurant",
        "8 Marina View, Singapore 018960",
        1.2800,
        103.8540,
        "+65 6221 0002",
        (
            DemoOffer(
                "Sushi bento",
                "Bento boxes made for the lunch crowd, still fresh tonight.",
                "sushi",
                ("20:30", "21:30"),
                (NewItem("Salmon bento", 5, 1600, 700), NewItem("Vegetable maki set", 4, 1200, 500)),
            ),
        ),
    ),
    DemoBusiness(
        900_003,
        "Siti",
        "Lau Pa Sat Noodle Bar",
        "restaurant",
        "18 Raffles Quay, Singapore 048582",
        1.2806,
        103.8505,
        "+65 6221 0003",
        (
            DemoOffer(
                "Laksa to go",
                "Our last pot of laksa, packed to take away.",
                "noodles",
                ("20:00", "21:30"),
                (NewItem("Laksa bowl", 6, 900, 400),),
                ("halal",),
            ),
        ),
    ),
    DemoBusiness(
        900_004,
        "Ravi",
        "Bugis Green Grocer",
        "grocery",
        "200 Victoria Street, Singapore 188021",
        1.3005,
        103.8556,
        "+65 6221 0004",
        (
            DemoOffer(
                "Fruit & veg rescue box",
                "Ripe fruit and vegetables that won't last until Monday.",
                "produce",
                ("18:00", "20:00"),
                (NewItem("Mixed vegetable box", 5, 1500, 600), NewItem("Ripe fruit bag", 8, 800, 300)),
                ("vegan",),
            ),
        ),
    ),
    DemoBusiness(
        900_005,
        "Nadia",
        "Kampong Glam Cake Café",
        "cafe",
        "21 Arab Street, Singapore 199738",
        1.3022,
        103.8596,
        "+65 6221 0005",
        (
            DemoOffer(
                "Cake slices",
                "Slices of today's cakes.",
                "cake",
                ("18:30", "20:00"),
                (
                    NewItem("Pandan chiffon slice", 6, 550, 250),
                    NewItem("Ondeh-ondeh cake slice", 4, 600, 280),
                ),
                ("vegetarian",),
            ),
        ),
    ),
)


@dataclass(frozen=True)
class Summary:
    businesses: int
    offers_created: int
    offers_kept: int

    def __str__(self) -> str:
        return (
            f"demo data: {self.businesses} businesses in {city.NAME}; "
            f"{self.offers_created} offers published, {self.offers_kept} already live"
        )


class PhotoUploader:
    """Uploads a PNG with the Bot API's sendPhoto and returns (largest file_id, thumbnail file_id)."""

    def __init__(self, api_base_url: str, token: str) -> None:
        # httpx logs each request's URL at INFO, and this URL holds the bot token: keep it out of the logs.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._url = f"{api_base_url.rstrip('/')}/bot{token}/sendPhoto"
        self._client = httpx.Client(timeout=20)

    def upload(self, chat_id: int, png: bytes, caption: str) -> tuple[str, str]:
        for _attempt in range(5):
            response = self._client.post(
                self._url,
                data={"chat_id": str(chat_id), "caption": caption},
                files={"photo": ("offer.png", png, "image/png")},
            )
            body = response.json()
            if response.status_code == 429:  # Telegram's flood limit: wait as told
                time.sleep(float(body.get("parameters", {}).get("retry_after", 1)))
                continue
            if not body.get("ok"):
                raise RuntimeError(f"sendPhoto failed: {body.get('description')}")
            sizes = body["result"]["photo"]
            return str(sizes[-1]["file_id"]), str(sizes[min(1, len(sizes) - 1)]["file_id"])
        raise RuntimeError("sendPhoto kept answering 429")

    def close(self) -> None:
        self._client.close()


def pickup_window(offer: DemoOffer, now: datetime) -> tuple[datetime, datetime]:
    """Today's window in the venue's time, or tomorrow's when today's is over (or nearly: < 30 min left)."""
    zone = ZoneInfo(city.TIMEZONE)
    local_now = now.astimezone(zone)

    def at(day: date, hhmm: str) -> datetime:
        hours, minutes = (int(part) for part in hhmm.split(":"))
        return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=zone)

    day = local_now.date()
    if at(day, offer.window[1]) - timedelta(minutes=30) <= local_now:
        day += timedelta(days=1)
    return at(day, offer.window[0]), at(day, offer.window[1])


def seed(database_url: str, photos: PhotoUploader, *, now: datetime) -> Summary:
    """Create what is missing of the demo businesses and offers; see the module docstring."""
    engine = make_engine(database_url)
    created = kept = 0
    try:
        factory = make_session_factory(engine)
        for spec in BUSINESSES:
            with SqlAlchemyUnitOfWork(factory) as uow:
                owner = uow.users.upsert_from_telegram(
                    telegram_user_id=spec.owner_telegram_id,
                    chat_id=spec.owner_telegram_id,
                    first_name=spec.owner_name,
                    username=None,
                    language_code="en",
                    now=now,
                )
                business = uow.businesses.latest_of_owner(owner.id)
                if business is None:
                    business = uow.businesses.create_with_venue(
                        owner_user_id=owner.id,
                        name=spec.name,
                        category=spec.category,
                        currency=city.CURRENCY,
                        contact_phone=spec.phone,
                        address=spec.address,
                        latitude=spec.latitude,
                        longitude=spec.longitude,
                        timezone=city.TIMEZONE,
                        now=now,
                    )
                if business.status != "verified":
                    uow.businesses.set_status(business, "verified", now=now)
                for index, spec_offer in enumerate(spec.offers):
                    photo, thumb = photos.upload(
                        spec.owner_telegram_id,
                        food_png(spec_offer.picture, seed=spec.owner_telegram_id + index),
                        spec_offer.title,
                    )
                    live = uow.session.scalars(
                        select(Offer).where(
                            Offer.business_id == business.id,
                            Offer.title == spec_offer.title,
                            Offer.status == "published",
                            Offer.pickup_end > now,
                        )
                    ).first()
                    if live is not None:
                        live.photo_file_id, live.thumb_file_id = photo, thumb
                        kept += 1
                        continue
                    start, end = pickup_window(spec_offer, now)
                    uow.offers.create(
                        business_id=business.id,
                        venue_id=business.venues[0].id,
                        title=spec_offer.title,
                        description=spec_offer.description,
                        photo_file_id=photo,
                        thumb_file_id=thumb,
                        pickup_start=start,
                        pickup_end=end,
                        currency=city.CURRENCY,
                        dietary_tags=list(spec_offer.tags),
                        items=list(spec_offer.items),
                        status="published",
                        now=now,
                    )
                    created += 1
                uow.commit()
    finally:
        engine.dispose()
    return Summary(len(BUSINESSES), created, kept)
