"""Dead letters: tasks that failed for good, for operators to list and replay.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("task_name", sa.Text(), nullable=False),
        sa.Column("args", postgresql.JSONB(), nullable=False),
        sa.Column("kwargs", postgresql.JSONB(), nullable=False),
        sa.Column("exception_type", sa.Text(), nullable=False),
        sa.Column("exception_message", sa.Text(), nullable=True),
        sa.Column("retries", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("correlation_id", sa.Text(), nullable=True),
        sa.Column("failed_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("replayed_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("replay_task_id", sa.Text(), nullable=True),
        sa.CheckConstraint("btrim(task_name) <> ''", name=op.f("ck_dead_letters_task_name_not_blank")),
        sa.CheckConstraint("jsonb_typeof(args) = 'array'", name=op.f("ck_dead_letters_args_is_array")),
        sa.CheckConstraint("jsonb_typeof(kwargs) = 'object'", name=op.f("ck_dead_letters_kwargs_is_object")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint("task_id", name=op.f("uq_dead_letters_task_id")),
    )
    op.create_index(
        op.f("ix_dead_letters_open_failed_at"),
        "dead_letters",
        ["failed_at"],
        postgresql_where=sa.text("replayed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("dead_letters")
