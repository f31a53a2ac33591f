"""Deliver one outbox message: lock the row, call the Bot API, record what happened, commit.

The outbox row is the message's single source of truth. Whatever the number of tasks enqueued for it (a
redelivered task, the sweep re-publishing a pending row), it reaches the user once: only the worker holding
the row lock sends, and it marks the row in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol

import structlog

from marketbot.logs import correlation
from tasks.adapters.telegram import FLOOD_CONTROL, Blocked, BotApiSender, Rejected, RetryLater, Sent

log = structlog.get_logger(__name__)

# The sender's wait after a Telegram 5xx or network error doubles with each attempt, so an outage is ridden
# out for minutes instead of burning all attempts in seconds; flood control's retry_after is used as given.
BACKOFF_MAX_SECONDS = 300.0


class DeliveryKind(StrEnum):
    SENT = "sent"
    ALREADY_DONE = "already_done"  # sent, given up on, or being sent by another worker right now
    RETRY = "retry"
    DROPPED = "dropped"  # never to be sent: the user blocked the bot
    FAILED = "failed"  # rejected by Telegram, or out of attempts


@dataclass(frozen=True)
class DeliveryOutcome:
    kind: DeliveryKind
    after: float = 0.0  # seconds until the next attempt is due, for RETRY
    message_id: int | None = None  # for SENT, when the call returned a message


# -- the unit of work, as far as this use case needs it (db.uow.SqlAlchemyUnitOfWork fits) ---------------


class OutboxRow(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def chat_id(self) -> int: ...
    @property
    def attempts(self) -> int: ...
    @property
    def not_before(self) -> datetime | None: ...
    @property
    def correlation_id(self) -> str | None: ...

    # Writable: a partly delivered split message is retried with only its unsent rest.
    method: str
    payload: dict[str, Any]


class OutboxRepository(Protocol):
    def lock_pending(self, outbox_id: int) -> Any: ...  # an OutboxRow, or None
    def mark_sent(self, msg: Any, *, telegram_message_id: int | None, now: datetime) -> None: ...
    def mark_dropped(self, msg: Any, *, reason: str, now: datetime) -> None: ...
    def record_failure(self, msg: Any, *, error: str, not_before: datetime | None) -> None: ...
    def mark_failed(self, msg: Any, *, error: str, now: datetime) -> None: ...


class UserRepository(Protocol):
    def mark_unreachable(self, telegram_user_id: int, now: datetime) -> None: ...


class UnitOfWork(Protocol):
    @property
    def outbox(self) -> OutboxRepository: ...
    @property
    def users(self) -> UserRepository: ...
    def commit(self) -> None: ...
    def __enter__(self) -> UnitOfWork: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


# -- the use case ------------------------------------------------------------------------------------------


def deliver_outbox_message(
    outbox_id: int,
    *,
    uow_factory: Callable[[], UnitOfWork],
    sender: BotApiSender,
    now: Callable[[], datetime],
    max_attempts: int = 8,
) -> DeliveryOutcome:
    """Send outbox message `outbox_id` at most once; safe to call any number of times, concurrently too."""
    with uow_factory() as uow:
        # FOR UPDATE SKIP LOCKED, and the lock is held across the HTTP call below on purpose: a duplicate
        # task for the same id (redelivery, the sweep) then finds nothing and returns, instead of sending the
        # message a second time while the first send is in flight.
        msg: OutboxRow | None = uow.outbox.lock_pending(outbox_id)
        if msg is None:
            return DeliveryOutcome(DeliveryKind.ALREADY_DONE)
        with correlation(msg.correlation_id):
            outcome = _deliver_locked(uow, msg, sender=sender, now=now, max_attempts=max_attempts)
            log.info("outbox_delivery", outbox_id=outbox_id, outcome=str(outcome.kind), after=outcome.after)
            return outcome


def _deliver_locked(
    uow: UnitOfWork, msg: OutboxRow, *, sender: BotApiSender, now: Callable[[], datetime], max_attempts: int
) -> DeliveryOutcome:
    started = now()
    if msg.not_before is not None and msg.not_before > started:
        return DeliveryOutcome(DeliveryKind.RETRY, after=(msg.not_before - started).total_seconds())

    result = sender.send(msg.method, _with_chat_id(msg.method, msg.payload, msg.chat_id))
    # A commit failure after a successful send leaves the row pending, and the retry sends again: the Bot
    # API has no idempotency key, so at-least-once is the best this border allows.
    finished = now()
    if isinstance(result, Sent):
        uow.outbox.mark_sent(msg, telegram_message_id=result.message_id, now=finished)
        uow.commit()
        return DeliveryOutcome(DeliveryKind.SENT, message_id=result.message_id)
    if isinstance(result, Blocked):
        uow.outbox.mark_dropped(msg, reason=result.reason, now=finished)
        # A private chat's id is the user's id (for a group this matches no user and does nothing).
        uow.users.mark_unreachable(msg.chat_id, finished)
        uow.commit()
        return DeliveryOutcome(DeliveryKind.DROPPED)
    if isinstance(result, Rejected):
        uow.outbox.mark_failed(msg, error=result.reason, now=finished)
        uow.commit()
        return DeliveryOutcome(DeliveryKind.FAILED)
    return _retry(uow, msg, result, now=finished, max_attempts=max_attempts)


def _retry(
    uow: UnitOfWork, msg: OutboxRow, result: RetryLater, *, now: datetime, max_attempts: int
) -> DeliveryOutcome:
    if result.resume_with is not None:
        # The head of a split message already reached the user: from now on, send only the rest.
        method, payload = result.resume_with
        if "chat_id" not in msg.payload:  # keep the row's convention for where chat_id lives
            payload = {k: v for k, v in payload.items() if k != "chat_id"}
        msg.method, msg.payload = method, payload
    if not result.attempted:
        # Our own shared rate limit said wait; Telegram was not asked, so it isn't a failed attempt.
        uow.commit()  # persists resume_with, if any; otherwise there is nothing to write
        return DeliveryOutcome(DeliveryKind.RETRY, after=result.after)
    if msg.attempts + 1 >= max_attempts:
        uow.outbox.mark_failed(msg, error=f"gave up after {max_attempts} attempts: {result.reason}", now=now)
        uow.commit()
        return DeliveryOutcome(DeliveryKind.FAILED)
    after = result.after
    if result.reason != FLOOD_CONTROL:
        after = min(after * 2**msg.attempts, BACKOFF_MAX_SECONDS)
    uow.outbox.record_failure(msg, error=result.reason, not_before=now + timedelta(seconds=after))
    uow.commit()
    return DeliveryOutcome(DeliveryKind.RETRY, after=after)


def _with_chat_id(method: str, payload: dict[str, Any], chat_id: int) -> dict[str, Any]:
    """The Bot API call as sent: rows may keep chat_id in its own column only (it's required there)."""
    if "chat_id" in payload or "inline_message_id" in payload or method == "answerCallbackQuery":
        return payload
    return {"chat_id": chat_id, **payload}
