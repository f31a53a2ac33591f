"""Customers buying: offer locations for "near me", search radius, one payment per hold, refunds.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

- offers.latitude/longitude: copied from the venue when the offer is created, so "offers near me" is one
  GiST index scan over live offers instead of a join through every venue (no PostGIS needed: the core
  `point` type and its GiST operator class do the bounding box).
- users.search_radius_m: the distance limit a customer picked (null: the default).
- reservations.chat_message_id: the message that carries the hold's Pay button, edited when it is paid.
- payments.reservation_id becomes unique (one Checkout Session per hold, as the idempotency key says),
  and 'processing' covers delayed payment methods between completion and async success/failure.
- refunds: one full refund per payment, requested inside the transaction that decides it and executed by
  a payments task with an idempotency key derived from the payment.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")
COORDINATES = (
    "((latitude IS NULL) = (longitude IS NULL)) AND (latitude IS NULL OR latitude BETWEEN -90 AND 90)"
    " AND (longitude IS NULL OR longitude BETWEEN -180 AND 180)"
)
OLD_PAYMENT_STATUSES = "status IN ('open', 'paid', 'failed', 'expired', 'refunded', 'partially_refunded')"
NEW_PAYMENT_STATUSES = (
    "status IN ('open', 'processing', 'paid', 'failed', 'expired', 'refunded', 'partially_refunded')"
)


def upgrade() -> None:
    op.add_column("users", sa.Column("search_radius_m", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_users_search_radius_range"),
        "users",
        "search_radius_m IS NULL OR search_radius_m BETWEEN 100 AND 100000",
    )

    op.add_column("offers", sa.Column("latitude", sa.Double(), nullable=True))
    op.add_column("offers", sa.Column("longitude", sa.Double(), nullable=True))
    op.execute(
        "UPDATE offers SET latitude = venues.latitude, longitude = venues.longitude "
        "FROM venues WHERE venues.id = offers.venue_id"
    )
    op.create_check_constraint(op.f("ck_offers_coordinates"), "offers", COORDINATES)
    op.create_index(
        op.f("ix_offers_live_location"),
        "offers",
        [sa.text("point(longitude, latitude)")],
        postgresql_using="gist",
        postgresql_where=sa.text("status = 'published' AND latitude IS NOT NULL"),
    )
    op.create_index(
        op.f("ix_offers_live_published_at"),
        "offers",
        ["published_at"],
        postgresql_where=sa.text("status = 'published'"),
    )

    op.add_column("reservations", sa.Column("chat_message_id", sa.BigInteger(), nullable=True))

    op.drop_index(op.f("ix_payments_reservation_id"), table_name="payments")
    op.create_unique_constraint(op.f("uq_payments_reservation_id"), "payments", ["reservation_id"])
    op.drop_constraint(op.f("ck_payments_status"), "payments", type_="check")
    op.create_check_constraint(op.f("ck_payments_status"), "payments", NEW_PAYMENT_STATUSES)

    op.create_table(
        "refunds",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("payment_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'requested'"), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("stripe_refund_id", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("succeeded_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("status IN ('requested', 'succeeded', 'failed')", name=op.f("ck_refunds_status")),
        sa.CheckConstraint(
            "reason IN ('offer_cancelled', 'customer_cancelled', 'paid_after_release', 'operator')",
            name=op.f("ck_refunds_reason"),
        ),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_refunds_currency")),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_refunds_amount_positive")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_refunds_attempts_non_negative")),
        sa.CheckConstraint(
            "status <> 'succeeded' OR (stripe_refund_id IS NOT NULL AND succeeded_at IS NOT NULL)",
            name=op.f("ck_refunds_succeeded_has_stripe_id"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_refunds_payment_id_payments"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_refunds_order_id_orders"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_refunds_payment_id")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_refunds_idempotency_key")),
        sa.UniqueConstraint("stripe_refund_id", name=op.f("uq_refunds_stripe_refund_id")),
    )
    op.create_index(op.f("ix_refunds_order_id"), "refunds", ["order_id"])
    op.create_index(
        op.f("ix_refunds_requested_created_at"),
        "refunds",
        ["created_at"],
        postgresql_where=sa.text("status = 'requested'"),
    )


def downgrade() -> None:
    op.drop_table("refunds")
    op.drop_constraint(op.f("ck_payments_status"), "payments", type_="check")
    op.create_check_constraint(op.f("ck_payments_status"), "payments", OLD_PAYMENT_STATUSES)
    op.drop_constraint(op.f("uq_payments_reservation_id"), "payments", type_="unique")
    op.create_index(op.f("ix_payments_reservation_id"), "payments", ["reservation_id"])
    op.drop_column("reservations", "chat_message_id")
    op.drop_index(op.f("ix_offers_live_published_at"), table_name="offers")
    op.drop_index(op.f("ix_offers_live_location"), table_name="offers")
    op.drop_constraint(op.f("ck_offers_coordinates"), "offers", type_="check")
    op.drop_column("offers", "longitude")
    op.drop_column("offers", "latitude")
    op.drop_constraint(op.f("ck_users_search_radius_range"), "users", type_="check")
    op.drop_column("users", "search_radius_m")
