"""Build a small, valid catalog (owner, bakery, venue, offer, item) to poke constraints at."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from db.models import Business, Offer, OfferItem, User, Venue


def random_telegram_id() -> int:
    """A Telegram user id no other test uses (real ids are already past 2**32)."""
    return random.randint(10**9, 10**12)


@dataclass
class Catalog:
    owner: User
    business: Business
    venue: Venue
    offer: Offer
    item: OfferItem


def add_bakery_offer(
    session: Session,
    *,
    now: datetime,
    quantity: int = 5,
    normal_price_minor: int = 600,
    offer_price_minor: int = 250,
) -> Catalog:
    """A verified bakery with one published offer of sourdough loaves (flushed, not committed)."""
    owner = User(telegram_user_id=random_telegram_id(), first_name="Rosa", role="business")
    session.add(owner)
    session.flush()
    business = Business(
        owner_user_id=owner.id,
        name="Rosa's Bakery",
        category="bakery",
        status="verified",
        verified_at=now,
        currency="EUR",
    )
    session.add(business)
    session.flush()
    venue = Venue(
        business_id=business.id,
        name="Rosa's Bakery, Main Street",
        address="1 Main Street",
        latitude=52.52,
        longitude=13.405,
        timezone="Europe/Berlin",
    )
    session.add(venue)
    session.flush()
    offer = Offer(
        business_id=business.id,
        venue_id=venue.id,
        title="End-of-day bread bag",
        latitude=venue.latitude,
        longitude=venue.longitude,
        status="published",
        published_at=now,
        pickup_start=now + timedelta(hours=1),
        pickup_end=now + timedelta(hours=2),
        currency="EUR",
    )
    offer.items.append(
        OfferItem(
            position=0,
            name="Sourdough loaf",
            quantity_total=quantity,
            remaining=quantity,
            normal_price_minor=normal_price_minor,
            offer_price_minor=offer_price_minor,
        )
    )
    session.add(offer)
    session.flush()
    return Catalog(owner=owner, business=business, venue=venue, offer=offer, item=offer.items[0])
