"""Rows the integration tests build on: users, verified businesses with a venue, published offers."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from db.models import Business, Offer, User
from db.offer_repositories import NewItem
from db.uow import SqlAlchemyUnitOfWork


def user(
    uow: SqlAlchemyUnitOfWork, now: datetime, first_name: str = "U", username: str | None = None
) -> User:
    telegram_id = random.randint(10**9, 9 * 10**9)
    return uow.users.upsert_from_telegram(
        telegram_user_id=telegram_id,
        chat_id=telegram_id,
        first_name=first_name,
        username=username,
        language_code="en",
        now=now,
    )


def verified_business(
    uow: SqlAlchemyUnitOfWork, owner: User, now: datetime, name: str = "Bakery", *, verified: bool = True
) -> Business:
    business = uow.businesses.create_with_venue(
        owner_user_id=owner.id,
        name=name,
        category="bakery",
        currency="SGD",
        contact_phone="+65 6000 0000",
        address="1 Orchard Road",
        latitude=None,
        longitude=None,
        timezone="Asia/Singapore",
        now=now,
    )
    if verified:
        uow.businesses.set_status(business, "verified", now=now)
    return business


def offer(
    uow: SqlAlchemyUnitOfWork,
    business: Business,
    now: datetime,
    *,
    title: str = "Bread bag",
    start: datetime | None = None,
    items: list[NewItem] | None = None,
) -> Offer:
    start = start or now
    return uow.offers.create(
        business_id=business.id,
        venue_id=business.venues[0].id,
        title=title,
        description="",
        photo_file_id="photo",
        thumb_file_id="thumb",
        pickup_start=start,
        pickup_end=start + timedelta(hours=3),
        currency="SGD",
        dietary_tags=[],
        status="published",
        now=now,
        items=items or [NewItem("Loaf", 5, 600, 250)],
    )
