"""Repositories: the only place that spells SQL for users, processed events, the outbox and the audit log.

Every write that must be idempotent is a single statement that PostgreSQL arbitrates (`ON CONFLICT`,
conditional `UPDATE`, `FOR UPDATE SKIP LOCKED`), never a read-then-write in Python, so it stays correct with
any number of workers. Times come from the caller's clock (`now`), never from `datetime.now()` here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Executable, delete, func, insert, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from db.models import AuditLogEntry, OutboxMessage, ProcessedEvent, User

# Long enough for any Bot API error description, short enough that a pathological one can't bloat a row.
MAX_ERROR_LENGTH = 2000


def _rowcount(session: Session, statement: Executable) -> int:
    """Rows matched by an UPDATE/DELETE (Session.execute is typed as a plain Result; DML gives a cursor)."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount


class UserNotFound(LookupError):
    """A per-user write named a Telegram user we have never seen (callers upsert the user first)."""


class UserRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def upsert_from_telegram(
        self,
        *,
        telegram_user_id: int,
        chat_id: int | None,
        first_name: str | None,
        username: str | None,
        language_code: str | None,
        now: datetime,
    ) -> User:
        """Create the user on first contact, refresh their profile on every later one; return the row.

        One statement, so two workers seeing a new user at once cannot both insert. Names are overwritten
        (a removed username must disappear), while chat_id and language_code are kept when an update type
        doesn't carry them.
        """
        values = pg_insert(User).values(
            telegram_user_id=telegram_user_id,
            chat_id=chat_id,
            first_name=first_name,
            username=username,
            language_code=language_code,
            created_at=now,
            updated_at=now,
        )
        excluded = values.excluded
        stmt = values.on_conflict_do_update(
            index_elements=[User.telegram_user_id],
            set_={
                "chat_id": func.coalesce(excluded.chat_id, User.chat_id),
                "first_name": excluded.first_name,
                "username": excluded.username,
                "language_code": func.coalesce(excluded.language_code, User.language_code),
                "updated_at": excluded.updated_at,
            },
        ).returning(User)
        # populate_existing: a User already in this session's identity map gets the fresh values.
        return self.session.scalars(stmt, execution_options={"populate_existing": True}).one()

    def get_by_telegram_id(self, telegram_user_id: int) -> User | None:
        return self.session.scalars(
            select(User).where(User.telegram_user_id == telegram_user_id)
        ).one_or_none()

    def advance_fence(self, telegram_user_id: int, token: int) -> bool:
        """Record that the holder of per-user lock `token` is committing effects; False if it is stale.

        The per-user lock in Redis expires; a worker that stalled past its expiry still believes it holds
        the lock while a newer holder (higher token) already processes the same user. Calling this in the
        same transaction as the effects makes the database the referee: the UPDATE row-locks the user until
        commit, so a stale holder either ran first (the newer one then waits for it, preserving order) or
        runs after the newer one committed and matches no row. Equal tokens pass: one holder commits several
        transactions.
        """
        updated = _rowcount(
            self.session,
            update(User)
            .where(User.telegram_user_id == telegram_user_id, User.fence_token <= token)
            .values(fence_token=token)
            .execution_options(synchronize_session="fetch"),
        )
        return updated == 1

    def set_role(self, telegram_user_id: int, role: str, now: datetime) -> None:
        """Set 'customer' or 'business' (the CHECK refuses anything else). Raises UserNotFound."""
        self._update_known(telegram_user_id, role=role, updated_at=now)

    def set_location(self, telegram_user_id: int, latitude: float, longitude: float, now: datetime) -> None:
        """Remember the last shared location for "near me". Raises UserNotFound."""
        self._update_known(
            telegram_user_id,
            latitude=latitude,
            longitude=longitude,
            location_updated_at=now,
            updated_at=now,
        )

    def mark_unreachable(self, telegram_user_id: int, now: datetime) -> None:
        """The user blocked the bot (Bot API 403): stop messaging them.

        A private chat's id equals the user's id, so the sender can pass the chat_id it failed on; for any
        other chat (a group) this matches no user and does nothing. The first time is kept: it says since
        when they are gone.
        """
        self.session.execute(
            update(User)
            .where(User.telegram_user_id == telegram_user_id)
            .values(unreachable_at=func.coalesce(User.unreachable_at, now), updated_at=now)
            .execution_options(synchronize_session="fetch")
        )

    def is_unreachable(self, telegram_user_id: int) -> bool:
        """True when this user (a private chat's id) blocked the bot and has not written since."""
        stmt = select(User.unreachable_at).where(User.telegram_user_id == telegram_user_id)
        return self.session.scalar(stmt) is not None

    def mark_reachable(self, telegram_user_id: int) -> None:
        """The user unblocked the bot (e.g. pressed Start again)."""
        self.session.execute(
            update(User)
            .where(User.telegram_user_id == telegram_user_id, User.unreachable_at.is_not(None))
            .values(unreachable_at=None)
            .execution_options(synchronize_session="fetch")
        )

    def _update_known(self, telegram_user_id: int, **values: Any) -> None:
        updated = _rowcount(
            self.session,
            update(User)
            .where(User.telegram_user_id == telegram_user_id)
            .values(**values)
            .execution_options(synchronize_session="fetch"),
        )
        if updated == 0:
            raise UserNotFound(telegram_user_id)


class ProcessedEventRepository:
    """Keys of things already handled: Telegram update ids, Stripe event ids, task keys."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(self, source: str, key: str, now: datetime) -> bool:
        """True the first time (source, key) is claimed; False for a redelivery, which must do nothing.

        Claim in the same transaction as the effect: a rollback frees the key for the retry, and a
        concurrent claim of the same key waits for this transaction and then gets False.
        """
        stmt = (
            pg_insert(ProcessedEvent)
            .values(source=source, key=key, processed_at=now)
            .on_conflict_do_nothing(index_elements=[ProcessedEvent.source, ProcessedEvent.key])
            .returning(ProcessedEvent.key)
        )
        return self.session.execute(stmt).first() is not None

    def purge_older_than(self, cutoff: datetime, limit: int = 10_000) -> int:
        """Forget keys processed before `cutoff`, at most `limit` per call; return how many.

        Bounded so one call is a short transaction (the cleanup task loops until it returns < limit).
        SKIP LOCKED: two overlapping cleanup runs split the rows instead of waiting on each other.
        The cutoff must be older than any redelivery window (Stripe retries for days).
        """
        victims = (
            select(ProcessedEvent.source, ProcessedEvent.key)
            .where(ProcessedEvent.processed_at < cutoff)
            .order_by(ProcessedEvent.processed_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return _rowcount(
            self.session,
            delete(ProcessedEvent)
            .where(tuple_(ProcessedEvent.source, ProcessedEvent.key).in_(victims))
            .execution_options(synchronize_session=False),
        )


class OutboxRepository:
    """Outgoing Bot API calls, written with the change they report and delivered by the sender task."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        dedup_key: str,
        chat_id: int,
        method: str,
        payload: dict[str, Any],
        now: datetime,
        correlation_id: str | None = None,
    ) -> int | None:
        """Queue a message; return its id, or None if `dedup_key` was already queued.

        `dedup_key` must derive from our own ids (e.g. f"order-paid:{order_id}"), so a retried use case
        writes the same key and cannot double-send. Enqueue the sender only for a returned id, and only
        after commit.
        """
        stmt = (
            pg_insert(OutboxMessage)
            .values(
                dedup_key=dedup_key,
                chat_id=chat_id,
                method=method,
                payload=payload,
                created_at=now,
                correlation_id=correlation_id,
            )
            .on_conflict_do_nothing(index_elements=[OutboxMessage.dedup_key])
            .returning(OutboxMessage.id)
        )
        return self.session.execute(stmt).scalar_one_or_none()

    def chat_of(self, outbox_id: int) -> int | None:
        """The chat a message is for, or None when the message does not exist."""
        return self.session.scalar(select(OutboxMessage.chat_id).where(OutboxMessage.id == outbox_id))

    def try_lock_chat(self, chat_id: int) -> bool:
        """Become the chat's only sender until this transaction ends; False if another sender is one now.

        A chat's messages must arrive in the order they were written (a reply before the next question), but
        each has its own send task and several workers run them. One sender per chat at a time, sending the
        oldest pending message first, keeps the order. Not waiting for the lock matters: with Telegram's
        ~1 message/s per chat, a chat with a backlog would otherwise park every worker behind it.
        """
        return bool(
            self.session.scalar(
                text("SELECT pg_try_advisory_xact_lock(hashtextextended('outbox-chat:' || :chat, 0))"),
                {"chat": str(chat_id)},
            )
        )

    def head_of_chat(self, chat_id: int) -> OutboxMessage | None:
        """The chat's oldest pending message, locked; call while holding try_lock_chat."""
        stmt = (
            select(OutboxMessage)
            .where(OutboxMessage.chat_id == chat_id, OutboxMessage.status == "pending")
            .order_by(OutboxMessage.id)
            .limit(1)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return self.session.scalars(stmt).one_or_none()

    def chat_has_pending(self, chat_id: int) -> bool:
        stmt = select(OutboxMessage.id).where(
            OutboxMessage.chat_id == chat_id, OutboxMessage.status == "pending"
        )
        return self.session.scalar(stmt.limit(1)) is not None

    def mark_sent(self, msg: OutboxMessage, *, telegram_message_id: int | None, now: datetime) -> None:
        msg.status = "sent"
        msg.sent_at = now
        msg.telegram_message_id = telegram_message_id
        self.session.flush()

    def mark_dropped(self, msg: OutboxMessage, *, reason: str, now: datetime) -> None:
        """Never to be sent (e.g. the user blocked the bot); not a failure, so nothing retries it."""
        msg.status = "dropped"
        msg.last_error = reason[:MAX_ERROR_LENGTH]
        msg.abandoned_at = now
        self.session.flush()

    def record_wait(self, msg: OutboxMessage, *, reason: str, not_before: datetime) -> None:
        """Telegram asked us to wait (flood control): not before `not_before`, and not a failed attempt."""
        msg.last_error = reason[:MAX_ERROR_LENGTH]
        msg.not_before = not_before
        self.session.flush()

    def record_failure(self, msg: OutboxMessage, *, error: str, not_before: datetime | None) -> None:
        """A failed attempt that will be retried: counted, and not retried before `not_before`."""
        msg.attempts += 1
        msg.last_error = error[:MAX_ERROR_LENGTH]
        msg.not_before = not_before
        self.session.flush()

    def mark_failed(self, msg: OutboxMessage, *, error: str, now: datetime) -> None:
        """Give up after the retry bound; the final attempt counts as one."""
        msg.status = "failed"
        msg.attempts += 1
        msg.last_error = error[:MAX_ERROR_LENGTH]
        msg.abandoned_at = now
        self.session.flush()

    def pending_ids(self, *, older_than: datetime, now: datetime, limit: int = 500) -> list[int]:
        """Pending messages created before `older_than` and due by `now`, oldest first.

        For the periodic sweep that re-enqueues sends whose task was lost (a crash between commit and
        publish). `older_than` leaves fresh rows to their own, already enqueued, task.
        """
        stmt = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.created_at < older_than,
                (OutboxMessage.not_before.is_(None)) | (OutboxMessage.not_before <= now),
            )
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))


class AuditLogRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        actor_telegram_user_id: int | None,
        action: str,
        subject_type: str,
        subject_id: str,
        now: datetime,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record an action (ids and amounts in `details`, no personal data). Written with the action's
        own transaction, so an action that rolls back leaves no trace and one that commits always does."""
        self.session.execute(
            insert(AuditLogEntry).values(
                actor_telegram_user_id=actor_telegram_user_id,
                action=action,
                subject_type=subject_type,
                subject_id=subject_id,
                reason=reason,
                details=details or {},
                created_at=now,
            )
        )
