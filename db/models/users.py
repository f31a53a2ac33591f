"""Telegram users: whoever talks to the bot, customers and business owners alike."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import CheckConstraint, Identity, Integer, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from db.models.base import Base, CreatedUpdatedMixin, coordinates_check, one_of

# Admins are not a role: they come from ADMIN_TELEGRAM_IDS, so revoking one never needs a data fix.
USER_ROLES: Final = ("customer", "business")


class User(CreatedUpdatedMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(one_of("role", USER_ROLES), name="role"),
        CheckConstraint(coordinates_check(), name="coordinates"),
        CheckConstraint("fence_token >= 0", name="fence_token_non_negative"),
        CheckConstraint(
            "search_radius_m IS NULL OR search_radius_m BETWEEN 100 AND 100000", name="search_radius_range"
        ),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(unique=True)
    # The private chat with the bot; equal to telegram_user_id for private chats, unknown until they write.
    chat_id: Mapped[int | None]
    first_name: Mapped[str | None] = mapped_column(Text)
    username: Mapped[str | None] = mapped_column(Text)
    language_code: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    location_updated_at: Mapped[datetime | None]
    # The distance limit the customer picked for "offers near me" (null: core.discovery's default).
    search_radius_m: Mapped[int | None] = mapped_column(Integer)
    # Set when Telegram answers 403 (the user blocked the bot): senders skip them instead of retrying.
    unreachable_at: Mapped[datetime | None]
    # Set by an operator for abuse (e.g. reserving and never paying); such users can browse but not reserve.
    banned_at: Mapped[datetime | None]
    # Highest per-user lock token that committed effects; see UserRepository.advance_fence.
    fence_token: Mapped[int] = mapped_column(server_default=text("0"))
    last_update_id: Mapped[int | None]
