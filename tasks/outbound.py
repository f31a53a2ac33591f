"""Deliver one outbox message: lock the row, call the Bot API, record what happened, commit.

The outbox row is the message's single source of truth. Whatever the number of tasks enqueued for it (a
redelivered task, the sweep re-publishing a pending row), it reaches the user once: only the worker holding
the row lock sends, and it marks the row in the same transaction.
"""

from __future__ import annotations

import time
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
# How long one task may keep sending a chat's backlog before it yields its worker to other chats.
DRAIN_BUDGET_SECONDS = 5.0


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
    def chat_of(self, outbox_id: int) -> int | None: ...
    def try_lock_chat(self, chat_id: int) -> bool: ...
    def head_of_chat(self, chat_id: int) -> Any: ...  # an OutboxRow, or None
    def chat_has_pending(self, chat_id: int) -> bool: ...
    def mark_sent(self, msg: Any, *, telegram_message_id: int | None, now: datetime) -> None: ...
    def mark_dropped(self, msg: Any, *, reason: str, now: datetime) -> None: ...
    def record_failure(self, msg: Any, *, error: str, not_before: datetime | None) -> None: ...
    def record_wait(self, msg: Any, *, reason: str, not_before: datetime) -> None: ...
    def mark_failed(self, msg: Any, *, error: str, now: datetime) -> None: ...


class UserRepository(Protocol):
    def mark_unreachable(self, telegram_user_id: int, now: datetime) -> None: ...
    def is_unreachable(self, telegram_user_id: int) -> bool: ...


class UnitOfWork(Protocol):
    @property
    def outbox(self) -> OutboxRepository: ...
    @property
    def users(self) -> UserRepository: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
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
    observe: Callable[[str], None] = lambda _result: None,
) -> DeliveryOutcome:
    """Make sure outbox message `outbox_id` gets sent once; safe to call any number of times, concurrently.

    Messages to one chat go out in the order they were written, by one sender at a time: the task that
    becomes the chat's sender delivers the chat's pending messages oldest first, its own among them, for up
    to DRAIN_BUDGET_SECONDS (then it asks to be retried, so other chats get their turn). A task that finds
    the chat already has a sender returns at once: that sender will send this message too, because it looks
    for pending messages once more after letting go of the chat. If it dies, the resend sweep picks up.
    """
    with uow_factory() as uow:
        chat_id = uow.outbox.chat_of(outbox_id)
    if chat_id is None:
        return DeliveryOutcome(DeliveryKind.ALREADY_DONE)
    outcome = DeliveryOutcome(DeliveryKind.ALREADY_DONE)
    deadline = time.monotonic() + DRAIN_BUDGET_SECONDS
    while time.monotonic() < deadline:
        with uow_factory() as uow:
            if not uow.outbox.try_lock_chat(chat_id):
                return outcome
            # The chat lock and the row lock are held across the HTTP call in _deliver_locked on purpose: a
            # duplicate task (redelivery, the sweep) must not send the same message while it is in flight.
            msg: OutboxRow | None = uow.outbox.head_of_chat(chat_id)
            if msg is None:
                uow.rollback()  # let go of the chat before the last look below
                with uow_factory() as look:
                    if not look.outbox.chat_has_pending(chat_id):
                        return outcome
                continue
            head_id = msg.id
            with correlation(msg.correlation_id):
                step = _deliver_locked(
                    uow, msg, sender=sender, now=now, max_attempts=max_attempts, observe=observe
                )
                log.info("outbox_delivery", outbox_id=head_id, outcome=str(step.kind), after=step.after)
        if step.kind == DeliveryKind.RETRY:
            # The chat's head must wait (flood control, Telegram down); everything behind it waits too.
            return step
        if head_id == outbox_id or outcome.kind == DeliveryKind.ALREADY_DONE:
            outcome = step
    return DeliveryOutcome(DeliveryKind.RETRY, after=0.0)


def _deliver_locked(
    uow: UnitOfWork,
    msg: OutboxRow,
    *,
    sender: BotApiSender,
    now: Callable[[], datetime],
    max_attempts: int,
    observe: Callable[[str], None],
) -> DeliveryOutcome:
    started = now()
    if msg.not_before is not None and msg.not_before > started:
        return DeliveryOutcome(DeliveryKind.RETRY, after=(msg.not_before - started).total_seconds())

    if uow.users.is_unreachable(msg.chat_id):
        # They blocked the bot (an earlier 403) and haven't written since: Telegram would refuse this too.
        uow.outbox.mark_dropped(msg, reason="the user blocked the bot", now=started)
        uow.commit()
        observe("skipped_unreachable")
        return DeliveryOutcome(DeliveryKind.DROPPED)
    result = sender.send(msg.method, _with_chat_id(msg.method, msg.payload, msg.chat_id))
    # A commit failure after a successful send leaves the row pending, and the retry sends again: the Bot
    # API has no idempotency key, so at-least-once is the best this border allows.
    finished = now()
    if isinstance(result, Sent):
        uow.outbox.mark_sent(msg, telegram_message_id=result.message_id, now=finished)
        uow.commit()
        observe("sent")
        return DeliveryOutcome(DeliveryKind.SENT, message_id=result.message_id)
    if isinstance(result, Blocked):
        uow.outbox.mark_dropped(msg, reason=result.reason, now=finished)
        # A private chat's id is the user's id (for a group this matches no user and does nothing).
        uow.users.mark_unreachable(msg.chat_id, finished)
        uow.commit()
        observe("blocked")
        return DeliveryOutcome(DeliveryKind.DROPPED)
    if isinstance(result, Rejected):
        uow.outbox.mark_failed(msg, error=result.reason, now=finished)
        uow.commit()
        observe("rejected")
        return DeliveryOutcome(DeliveryKind.FAILED)
    outcome = _retry(uow, msg, result, now=finished, max_attempts=max_attempts)
    if result.attempted:
        observe("flood_control" if result.reason == FLOOD_CONTROL else str(outcome.kind))
    return outcome


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
    if result.reason == FLOOD_CONTROL:
        # Telegram said when to come back: a wait, not a failed attempt. Counting 429s against the bound
        # gave up on messages during a long flood (tests/faults); they must be delayed, not lost.
        uow.outbox.record_wait(msg, reason=result.reason, not_before=now + timedelta(seconds=result.after))
        uow.commit()
        return DeliveryOutcome(DeliveryKind.RETRY, after=result.after)
    if msg.attempts + 1 >= max_attempts:
        uow.outbox.mark_failed(msg, error=f"gave up after {max_attempts} attempts: {result.reason}", now=now)
        uow.commit()
        return DeliveryOutcome(DeliveryKind.FAILED)
    after = min(result.after * 2**msg.attempts, BACKOFF_MAX_SECONDS)
    uow.outbox.record_failure(msg, error=result.reason, not_before=now + timedelta(seconds=after))
    uow.commit()
    return DeliveryOutcome(DeliveryKind.RETRY, after=after)


def _with_chat_id(method: str, payload: dict[str, Any], chat_id: int) -> dict[str, Any]:
    """The Bot API call as sent: rows may keep chat_id in its own column only (it's required there)."""
    if "chat_id" in payload or "inline_message_id" in payload or method == "answerCallbackQuery":
        return payload
    return {"chat_id": chat_id, **payload}
