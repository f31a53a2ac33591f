"""Tables that make at-least-once delivery produce effects exactly once: processed events and the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import CheckConstraint, Identity, Index, Integer, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.telegram_limits import OUTBOX_METHODS as OUTBOX_METHODS
from db.models.base import Base, not_blank, one_of

OUTBOX_STATUSES: Final = ("pending", "sent", "dropped", "failed")


class ProcessedEvent(Base):
    """A key seen once: a Telegram update id, a Stripe event id, a task key.

    Claimed in the same transaction as the effect, so a redelivery after commit is a no-op and a crash
    before commit leaves the key free for the retry.
    """

    __tablename__ = "processed_events"
    __table_args__ = (
        CheckConstraint(not_blank("source"), name="source_not_blank"),
        # The purge job deletes by age.
        Index("ix_processed_events_processed_at", "processed_at"),
    )

    source: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(server_default=func.now())


class OutboxMessage(Base):
    """A Bot API call to make, written in the same transaction as the change it reports.

    A retried use case cannot double-send (`dedup_key` is derived from our own ids) and a crash between
    commit and send cannot lose the message (the sweep re-enqueues pending rows).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(one_of("method", OUTBOX_METHODS), name="method"),
        CheckConstraint(one_of("status", OUTBOX_STATUSES), name="status"),
        CheckConstraint(not_blank("dedup_key"), name="dedup_key_not_blank"),
        CheckConstraint("jsonb_typeof(payload) = 'object'", name="payload_is_object"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint("status <> 'sent' OR sent_at IS NOT NULL", name="sent_has_time"),
        CheckConstraint(
            "status NOT IN ('dropped', 'failed') OR abandoned_at IS NOT NULL", name="abandoned_has_time"
        ),
        # Only pending rows are ever scanned; a partial index stays small however much history piles up.
        Index("ix_outbox_pending_created_at", "created_at", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    dedup_key: Mapped[str] = mapped_column(Text, unique=True)
    chat_id: Mapped[int]
    method: Mapped[str] = mapped_column(Text)
    # The Bot API parameters except chat_id, exactly as the sender will post them.
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(Text, server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    # Earliest next attempt (Telegram's retry_after, or our backoff).
    not_before: Mapped[datetime | None]
    correlation_id: Mapped[str | None] = mapped_column(Text)
    # Returned by sendMessage/sendPhoto; later edits of the same card need it.
    telegram_message_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]
    # When we stopped trying: dropped (e.g. the user blocked the bot) or failed after bounded retries.
    abandoned_at: Mapped[datetime | None]


class DeadLetter(Base):
    """A task that failed for good (bounded retries exhausted, or an error retrying cannot fix).

    Operators list them with `marketbot dead-letters` and replay them once the cause is fixed; every task is
    idempotent, so a replay of something that half-happened is safe.
    """

    __tablename__ = "dead_letters"
    __table_args__ = (
        CheckConstraint(not_blank("task_name"), name="task_name_not_blank"),
        CheckConstraint("jsonb_typeof(args) = 'array'", name="args_is_array"),
        CheckConstraint("jsonb_typeof(kwargs) = 'object'", name="kwargs_is_object"),
        # The operator's list: the ones not replayed yet, newest first.
        Index("ix_dead_letters_open_failed_at", "failed_at", postgresql_where=text("replayed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    # A redelivered failure of the same message is recorded once.
    task_id: Mapped[str] = mapped_column(Text, unique=True)
    task_name: Mapped[str] = mapped_column(Text)
    args: Mapped[Any] = mapped_column(JSONB)
    kwargs: Mapped[dict[str, Any]]
    exception_type: Mapped[str] = mapped_column(Text)
    # The exception's message, cut short; tracebacks go to the error log, never to a table.
    exception_message: Mapped[str | None] = mapped_column(Text)
    retries: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    correlation_id: Mapped[str | None] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    replayed_at: Mapped[datetime | None]
    replay_task_id: Mapped[str | None] = mapped_column(Text)
