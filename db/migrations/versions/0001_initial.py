"""Initial schema: users, catalog (businesses, venues, offers, items), sales, reliability, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

A frozen snapshot: it spells out every column and constraint instead of importing db.models, so it keeps
building exactly this schema however the models change later. Every name is wrapped in op.f() so the
naming convention is not applied a second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")
COORDINATES = (
    "((latitude IS NULL) = (longitude IS NULL)) AND (latitude IS NULL OR latitude BETWEEN -90 AND 90)"
    " AND (longitude IS NULL OR longitude BETWEEN -180 AND 180)"
)
CURRENCY = "currency ~ '^[A-Z]{3}$'"


def _tstz(name: str, *, nullable: bool = True, now_default: bool = False) -> sa.Column[datetime]:
    return sa.Column(
        name, sa.TIMESTAMP(timezone=True), server_default=NOW if now_default else None, nullable=nullable
    )


def _created_updated() -> list[sa.Column[datetime]]:
    return [
        _tstz("created_at", nullable=False, now_default=True),
        _tstz("updated_at", nullable=False, now_default=True),
    ]


def _identity_pk() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False)


def _check(table: str, name: str, sql: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(sql, name=op.f(f"ck_{table}_{name}"))


def _index(table: str, columns: list[str], *, name: str | None = None, where: str | None = None) -> None:
    op.create_index(
        op.f(name or f"ix_{table}_{'_'.join(columns)}"),
        table,
        columns,
        unique=False,
        postgresql_where=sa.text(where) if where else None,
    )


def upgrade() -> None:
    op.create_table(
        "users",
        _identity_pk(),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("first_name", sa.Text(), nullable=True),
        sa.Column("username", sa.Text(), nullable=True),
        sa.Column("language_code", sa.Text(), nullable=True),
        sa.Column("role", sa.Text(), nullable=True),
        sa.Column("latitude", sa.Double(), nullable=True),
        sa.Column("longitude", sa.Double(), nullable=True),
        _tstz("location_updated_at"),
        _tstz("unreachable_at"),
        _tstz("banned_at"),
        sa.Column("fence_token", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_update_id", sa.BigInteger(), nullable=True),
        *_created_updated(),
        _check("users", "role", "role IN ('customer', 'business')"),
        _check("users", "coordinates", COORDINATES),
        _check("users", "fence_token_non_negative", "fence_token >= 0"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("telegram_user_id", name=op.f("uq_users_telegram_user_id")),
    )

    op.create_table(
        "businesses",
        _identity_pk(),
        sa.Column("owner_user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("contact_phone", sa.Text(), nullable=True),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        _tstz("verified_at"),
        _tstz("suspended_at"),
        *_created_updated(),
        _check("businesses", "category", "category IN ('bakery', 'restaurant', 'cafe', 'grocery', 'other')"),
        _check("businesses", "status", "status IN ('pending', 'verified', 'rejected', 'suspended')"),
        _check("businesses", "currency", CURRENCY),
        _check("businesses", "name_not_blank", "btrim(name) <> ''"),
        _check("businesses", "verified_has_time", "status <> 'verified' OR verified_at IS NOT NULL"),
        _check("businesses", "suspended_has_time", "status <> 'suspended' OR suspended_at IS NOT NULL"),
        sa.ForeignKeyConstraint(
            ["owner_user_id"],
            ["users.id"],
            name=op.f("fk_businesses_owner_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_businesses")),
    )
    _index("businesses", ["owner_user_id"])
    _index("businesses", ["created_at"], name="ix_businesses_pending_created_at", where="status = 'pending'")

    op.create_table(
        "venues",
        _identity_pk(),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("latitude", sa.Double(), nullable=True),
        sa.Column("longitude", sa.Double(), nullable=True),
        sa.Column("timezone", sa.Text(), nullable=False),
        *_created_updated(),
        _check("venues", "coordinates", COORDINATES),
        _check("venues", "name_not_blank", "btrim(name) <> ''"),
        _check("venues", "timezone_not_blank", "btrim(timezone) <> ''"),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_venues_business_id_businesses"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_venues")),
        sa.UniqueConstraint("id", "business_id", name=op.f("uq_venues_id_business_id")),
    )
    _index("venues", ["business_id"])
    _index("venues", ["latitude", "longitude"])

    op.create_table(
        "offers",
        _identity_pk(),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("venue_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("photo_file_id", sa.Text(), nullable=True),
        sa.Column("thumb_file_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'draft'"), nullable=False),
        _tstz("pickup_start", nullable=False),
        _tstz("pickup_end", nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column(
            "dietary_tags", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("per_order_limit", sa.Integer(), nullable=True),
        _tstz("published_at"),
        _tstz("cancelled_at"),
        *_created_updated(),
        _check(
            "offers",
            "status",
            "status IN ('draft', 'published', 'paused', 'sold_out', 'cancelled', 'expired')",
        ),
        _check("offers", "currency", CURRENCY),
        _check("offers", "title_not_blank", "btrim(title) <> ''"),
        _check("offers", "pickup_window", "pickup_start < pickup_end"),
        _check("offers", "per_order_limit_positive", "per_order_limit IS NULL OR per_order_limit > 0"),
        _check(
            "offers",
            "published_has_time",
            "NOT (status IN ('published', 'paused', 'sold_out')) OR published_at IS NOT NULL",
        ),
        _check("offers", "cancelled_has_time", "status <> 'cancelled' OR cancelled_at IS NOT NULL"),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_offers_business_id_businesses"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["venue_id", "business_id"],
            ["venues.id", "venues.business_id"],
            name=op.f("fk_offers_venue_id_venues"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
    )
    _index("offers", ["business_id"])
    _index("offers", ["venue_id", "business_id"])
    _index("offers", ["status", "pickup_end"])

    op.create_table(
        "offer_items",
        _identity_pk(),
        sa.Column("offer_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("quantity_total", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("normal_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("offer_price_minor", sa.BigInteger(), nullable=False),
        *_created_updated(),
        _check("offer_items", "position_non_negative", "position >= 0"),
        _check("offer_items", "name_not_blank", "btrim(name) <> ''"),
        _check("offer_items", "quantity_total_non_negative", "quantity_total >= 0"),
        _check("offer_items", "remaining_non_negative", "remaining >= 0"),
        _check("offer_items", "remaining_within_total", "remaining <= quantity_total"),
        _check(
            "offer_items",
            "offer_price_discounted",
            "offer_price_minor > 0 AND offer_price_minor < normal_price_minor",
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_offer_items_offer_id_offers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer_items")),
        sa.UniqueConstraint("offer_id", "position", name=op.f("uq_offer_items_offer_id_position")),
    )

    op.create_table(
        "reservations",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("offer_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'held'"), nullable=False),
        _tstz("expires_at", nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        *_created_updated(),
        _check("reservations", "status", "status IN ('held', 'paid', 'released', 'expired', 'cancelled')"),
        _check("reservations", "currency", CURRENCY),
        _check("reservations", "total_non_negative", "total_minor >= 0"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_reservations_user_id_users"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_reservations_offer_id_offers"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_reservations_idempotency_key")),
    )
    _index("reservations", ["user_id"])
    _index("reservations", ["offer_id"])
    _index("reservations", ["status", "expires_at"])

    op.create_table(
        "reservation_items",
        sa.Column("reservation_id", sa.Uuid(), nullable=False),
        sa.Column("offer_item_id", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        _check("reservation_items", "quantity_positive", "quantity > 0"),
        _check("reservation_items", "unit_price_positive", "unit_price_minor > 0"),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.id"],
            name=op.f("fk_reservation_items_reservation_id_reservations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["offer_item_id"],
            ["offer_items.id"],
            name=op.f("fk_reservation_items_offer_item_id_offer_items"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("reservation_id", "offer_item_id", name=op.f("pk_reservation_items")),
    )
    _index("reservation_items", ["offer_item_id"])

    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("reservation_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("offer_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'paid'"), nullable=False),
        sa.Column("pickup_code", sa.Text(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        _tstz("redeemed_at"),
        _tstz("cancelled_at"),
        _tstz("reminded_at"),
        *_created_updated(),
        _check("orders", "status", "status IN ('paid', 'redeemed', 'cancelled', 'refunded')"),
        _check("orders", "currency", CURRENCY),
        _check("orders", "total_non_negative", "total_minor >= 0"),
        _check("orders", "pickup_code_not_blank", "btrim(pickup_code) <> ''"),
        _check("orders", "redeemed_has_time", "status <> 'redeemed' OR redeemed_at IS NOT NULL"),
        _check("orders", "cancelled_has_time", "status <> 'cancelled' OR cancelled_at IS NOT NULL"),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.id"],
            name=op.f("fk_orders_reservation_id_reservations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_orders_user_id_users"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_orders_offer_id_offers"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("reservation_id", name=op.f("uq_orders_reservation_id")),
        sa.UniqueConstraint("offer_id", "pickup_code", name=op.f("uq_orders_offer_id_pickup_code")),
    )
    _index("orders", ["user_id"])

    op.create_table(
        "payments",
        _identity_pk(),
        sa.Column("reservation_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("stripe_checkout_session_id", sa.Text(), nullable=False),
        sa.Column("stripe_payment_intent_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'open'"), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("checkout_url", sa.Text(), nullable=True),
        _tstz("expires_at"),
        _tstz("paid_at"),
        *_created_updated(),
        _check(
            "payments",
            "status",
            "status IN ('open', 'paid', 'failed', 'expired', 'refunded', 'partially_refunded')",
        ),
        _check("payments", "currency", CURRENCY),
        _check("payments", "amount_positive", "amount_minor > 0"),
        _check("payments", "refund_within_amount", "refunded_minor >= 0 AND refunded_minor <= amount_minor"),
        _check("payments", "refunded_in_full", "status <> 'refunded' OR refunded_minor = amount_minor"),
        _check(
            "payments",
            "refunded_in_part",
            "status <> 'partially_refunded' OR (refunded_minor > 0 AND refunded_minor < amount_minor)",
        ),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.id"],
            name=op.f("fk_payments_reservation_id_reservations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_payments_order_id_orders"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint(
            "stripe_checkout_session_id", name=op.f("uq_payments_stripe_checkout_session_id")
        ),
        sa.UniqueConstraint("stripe_payment_intent_id", name=op.f("uq_payments_stripe_payment_intent_id")),
    )
    _index("payments", ["reservation_id"])
    _index("payments", ["order_id"])

    op.create_table(
        "processed_events",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        _tstz("processed_at", nullable=False, now_default=True),
        _check("processed_events", "source_not_blank", "btrim(source) <> ''"),
        sa.PrimaryKeyConstraint("source", "key", name=op.f("pk_processed_events")),
    )
    _index("processed_events", ["processed_at"])

    op.create_table(
        "audit_log",
        _identity_pk(),
        sa.Column("actor_telegram_user_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject_type", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        _tstz("created_at", nullable=False, now_default=True),
        _check("audit_log", "action_not_blank", "btrim(action) <> ''"),
        _check("audit_log", "details_is_object", "jsonb_typeof(details) = 'object'"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    _index("audit_log", ["subject_type", "subject_id"])

    op.create_table(
        "outbox",
        _identity_pk(),
        sa.Column("dedup_key", sa.Text(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _tstz("not_before"),
        sa.Column("correlation_id", sa.Text(), nullable=True),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        _tstz("created_at", nullable=False, now_default=True),
        _tstz("sent_at"),
        _tstz("abandoned_at"),
        _check(
            "outbox",
            "method",
            "method IN ('sendMessage', 'sendPhoto', 'editMessageText', 'editMessageCaption',"
            " 'editMessageReplyMarkup', 'answerCallbackQuery', 'deleteMessage')",
        ),
        _check("outbox", "status", "status IN ('pending', 'sent', 'dropped', 'failed')"),
        _check("outbox", "dedup_key_not_blank", "btrim(dedup_key) <> ''"),
        _check("outbox", "payload_is_object", "jsonb_typeof(payload) = 'object'"),
        _check("outbox", "attempts_non_negative", "attempts >= 0"),
        _check("outbox", "sent_has_time", "status <> 'sent' OR sent_at IS NOT NULL"),
        _check(
            "outbox", "abandoned_has_time", "status NOT IN ('dropped', 'failed') OR abandoned_at IS NOT NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_outbox_dedup_key")),
    )
    _index("outbox", ["created_at"], name="ix_outbox_pending_created_at", where="status = 'pending'")


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes and constraints with it.
    for table in (
        "outbox",
        "audit_log",
        "processed_events",
        "payments",
        "orders",
        "reservation_items",
        "reservations",
        "offer_items",
        "offers",
        "venues",
        "businesses",
        "users",
    ):
        op.drop_table(table)
