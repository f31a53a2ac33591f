"""What is for sale: businesses, their venues, offers and the items inside an offer."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import (
    CHAR,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models.base import Base, CreatedUpdatedMixin, coordinates_check, currency_check, not_blank, one_of

BUSINESS_CATEGORIES: Final = ("bakery", "restaurant", "cafe", "grocery", "other")
BUSINESS_STATUSES: Final = ("pending", "verified", "rejected", "suspended")
OFFER_STATUSES: Final = ("draft", "published", "paused", "sold_out", "cancelled", "expired")
# States an offer can only be in after it was published once (published_at must then be known).
OFFER_STATUSES_AFTER_PUBLISHING: Final = ("published", "paused", "sold_out")


class Business(CreatedUpdatedMixin, Base):
    __tablename__ = "businesses"
    __table_args__ = (
        CheckConstraint(one_of("category", BUSINESS_CATEGORIES), name="category"),
        CheckConstraint(one_of("status", BUSINESS_STATUSES), name="status"),
        CheckConstraint(currency_check(), name="currency"),
        CheckConstraint(not_blank("name"), name="name_not_blank"),
        CheckConstraint("status <> 'verified' OR verified_at IS NOT NULL", name="verified_has_time"),
        CheckConstraint("status <> 'suspended' OR suspended_at IS NOT NULL", name="suspended_has_time"),
        # The admins' verification queue: pending businesses, oldest first.
        Index(
            "ix_businesses_pending_created_at",
            "created_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    owner_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=text("'pending'"))
    currency: Mapped[str] = mapped_column(CHAR(3))
    contact_phone: Mapped[str | None] = mapped_column(Text)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    verified_at: Mapped[datetime | None]
    suspended_at: Mapped[datetime | None]

    venues: Mapped[list[Venue]] = relationship(back_populates="business", order_by="Venue.id")


class Venue(CreatedUpdatedMixin, Base):
    """A pickup place. Its IANA timezone turns stored UTC instants into the times shown to customers."""

    __tablename__ = "venues"
    __table_args__ = (
        CheckConstraint(coordinates_check(), name="coordinates"),
        CheckConstraint(not_blank("name"), name="name_not_blank"),
        CheckConstraint(not_blank("timezone"), name="timezone_not_blank"),
        # Target of offers' composite FK: an offer's venue must belong to the offer's business.
        UniqueConstraint("id", "business_id"),
        # Bounding-box prefilter for "offers near me" (no PostGIS: distance is computed on the candidates).
        Index("ix_venues_latitude_longitude", "latitude", "longitude"),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    timezone: Mapped[str] = mapped_column(Text)

    business: Mapped[Business] = relationship(back_populates="venues")


class Offer(CreatedUpdatedMixin, Base):
    __tablename__ = "offers"
    __table_args__ = (
        CheckConstraint(one_of("status", OFFER_STATUSES), name="status"),
        CheckConstraint(currency_check(), name="currency"),
        CheckConstraint(not_blank("title"), name="title_not_blank"),
        CheckConstraint("pickup_start < pickup_end", name="pickup_window"),
        CheckConstraint("per_order_limit IS NULL OR per_order_limit > 0", name="per_order_limit_positive"),
        CheckConstraint(
            f"NOT ({one_of('status', OFFER_STATUSES_AFTER_PUBLISHING)}) OR published_at IS NOT NULL",
            name="published_has_time",
        ),
        CheckConstraint("status <> 'cancelled' OR cancelled_at IS NOT NULL", name="cancelled_has_time"),
        # Composite FK: the venue must be one of this business's venues (callback data is untrusted).
        ForeignKeyConstraint(
            ["venue_id", "business_id"],
            ["venues.id", "venues.business_id"],
            ondelete="RESTRICT",
        ),
        # Browsing ("published and still collectable") and the expiry sweep both filter on these two.
        Index("ix_offers_status_pickup_end", "status", "pickup_end"),
        Index("ix_offers_venue_id_business_id", "venue_id", "business_id"),
        CheckConstraint(coordinates_check(), name="coordinates"),
        # "Offers near me": a GiST bounding-box scan over live offers only (core point type, no PostGIS).
        Index(
            "ix_offers_live_location",
            text("point(longitude, latitude)"),
            postgresql_using="gist",
            postgresql_where=text("status = 'published' AND latitude IS NOT NULL"),
        ),
        # "Latest": newest live offers first.
        Index("ix_offers_live_published_at", "published_at", postgresql_where=text("status = 'published'")),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="RESTRICT"), index=True)
    venue_id: Mapped[int]
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    # Telegram file ids: the photo is stored by Telegram, we only keep the handle to resend it.
    photo_file_id: Mapped[str | None] = mapped_column(Text)
    thumb_file_id: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=text("'draft'"))
    pickup_start: Mapped[datetime]
    pickup_end: Mapped[datetime]
    currency: Mapped[str] = mapped_column(CHAR(3))
    dietary_tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default=text("'{}'"))
    # At most this many units per reservation (null: no limit beyond stock).
    per_order_limit: Mapped[int | None] = mapped_column(Integer)
    # Copied from the venue at creation: distance search scans offers alone (see ix_offers_live_location).
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    published_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]

    items: Mapped[list[OfferItem]] = relationship(
        back_populates="offer", order_by="OfferItem.position", cascade="all, delete-orphan"
    )


class OfferItem(CreatedUpdatedMixin, Base):
    """One priced line of an offer ("3 x sourdough loaf, 2.50 instead of 6.00").

    `remaining` is decremented by reservations with a conditional UPDATE; the CHECKs are the backstop that
    turns any bug into an error instead of an oversold unit.
    """

    __tablename__ = "offer_items"
    __table_args__ = (
        UniqueConstraint("offer_id", "position"),
        CheckConstraint("position >= 0", name="position_non_negative"),
        CheckConstraint(not_blank("name"), name="name_not_blank"),
        CheckConstraint("quantity_total >= 0", name="quantity_total_non_negative"),
        CheckConstraint("remaining >= 0", name="remaining_non_negative"),
        CheckConstraint("remaining <= quantity_total", name="remaining_within_total"),
        CheckConstraint(
            "offer_price_minor > 0 AND offer_price_minor < normal_price_minor", name="offer_price_discounted"
        ),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    # Indexed by uq_offer_items_offer_id_position (leading column).
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    quantity_total: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    normal_price_minor: Mapped[int]
    offer_price_minor: Mapped[int]

    offer: Mapped[Offer] = relationship(back_populates="items")
