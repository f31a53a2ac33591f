"""Deliver one outbox message: lock the row, call the Bot API, record what happened, commit.

The outbox row is the message's single source of truth. Whatever the number of tasks enqueued for it (a
redelivered task, the sweep re-publishing a pending row), it reaches the user once: only the worker holding
the row lock sends, and it marks the row in the same transaction.

A chat's messages wait for each other (order) and for the chat's next send slot (Telegram's ~1/s per chat),
but a task never sleeps on them: when the chat's next message must wait, the task that found out records
when on the message (`not_before`) and comes back for it then (a retry carrying that message's id), and its
worker serves other chats meanwhile. Other tasks for the chat that meet such a wait leave it to that one, so
a chat with a backlog has one task coming back for it, not one per message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol

import structlog

from marketbot.logs import correlation
from tasks.adapters.telegram import (
    CHAT_RATE_LIMITED,
    FLOOD_CONTROL,
    Blocked,
    BotApiSender,
    Rejected,
    RetryLater,
    Sent,
)

log = structlog.get_logger(__name__)

# The sender's wait after a Telegram 5xx or network error doubles with each attempt, so an outage is ridden
# out for minutes instead of burning all attempts in seconds; flood control's retry_after is used as given.
BACKOFF_MAX_SECONDS = 300.0
# The longest RETRY `after`: a retry waits un-acked in a worker, and past the broker's visibility timeout
# (900 s, tasks/app.py) it would be handed out twice. A longer wait (a huge retry_after) is kept on the
# row's not_before; the retry that comes early just retries again.
MAX_RETRY_AFTER_SECONDS = 300.0
# How long one task may keep sending a chat's backlog before it yields its worker to other chats.
DRAIN_BUDGET_SECONDS = 5.0
# A retried task (it may be the only one coming back for the chat's next message) that finds another sender
# on the chat looks again after this, rather than trusting that sender to have seen its message.
CHAT_BUSY_RETRY_SECONDS = 0.25


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
    # For RETRY: the message the retry must be for (the chat's next one, whose wait this task now owns).
    retry_id: int | None = field(default=None, compare=False)


# -- the unit of work, as far as this use case needs it (db.uow.SqlAlchemyUnitOfWork fits) ---------------


class OutboxRow(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def chat_id(self) -> int: ...
    @property
    def attempts(self) -> int: ...
    @property
    def correlation_id(self) -> str | None: ...

    # Writable: a partly delivered split message is retried with only its unsent rest; a wait for the
    # chat's send slot is recorded on the message without counting as an error.
    method: str
    payload: dict[str, Any]
    not_before: datetime | None


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
    retried: bool = False,
) -> DeliveryOutcome:
    """Make sure outbox message `outbox_id` gets sent once; safe to call any number of times, concurrently.

    Messages to one chat go out in the order they were written, by one sender at a time: the task that
    becomes the chat's sender delivers the chat's pending messages oldest first, its own among them, for as
    long as they may go out at once (up to DRAIN_BUDGET_SECONDS). When the chat's next message must wait
    (its send slot, flood control, Telegram down), the outcome is RETRY with `retry_id` = that message:
    the caller retries for it after `after` seconds (at most MAX_RETRY_AFTER_SECONDS). A task that finds
    the chat already has a sender returns at once: that sender will send this message too, or hand it to
    its own retry. A task that finds the chat's next message already waiting, for a retry other than its
    own, leaves it to that retry. If a task dies, the resend sweep picks up. `retried`: this run is such a
    retry (see CHAT_BUSY_RETRY_SECONDS).
    """
    outcome = DeliveryOutcome(DeliveryKind.ALREADY_DONE)
    chat_id: int | None = None
    deadline = time.monotonic() + DRAIN_BUDGET_SECONDS
    first = True
    while True:
        with uow_factory() as uow:
            if chat_id is None:
                chat_id = uow.outbox.chat_of(outbox_id)
                if chat_id is None:
                    return outcome
            if not uow.outbox.try_lock_chat(chat_id):
                if first and retried:
                    busy = CHAT_BUSY_RETRY_SECONDS
                    return DeliveryOutcome(DeliveryKind.RETRY, after=busy, retry_id=outbox_id)
                return outcome
            first = False
            # The chat lock and the row lock are held across the HTTP call in _deliver_locked on purpose: a
            # duplicate task (redelivery, the sweep) must not send the same message while it is in flight.
            msg: OutboxRow | None = uow.outbox.head_of_chat(chat_id)
            if msg is None:
                uow.rollback()  # let go of the chat before the last look below
                if not _has_pending(uow_factory, chat_id):
                    return outcome
                continue
            head_id = msg.id
            if time.monotonic() >= deadline:
                return DeliveryOutcome(DeliveryKind.RETRY, after=0.0, retry_id=head_id)
            started = now()
            if msg.not_before is not None and msg.not_before > started:
                if head_id != outbox_id:
                    # The task that set this wait retries for this very message when it ends (or, lost,
                    # the sweep re-publishes it then); one more retry per queued message would multiply.
                    return outcome
                after = min((msg.not_before - started).total_seconds(), MAX_RETRY_AFTER_SECONDS)
                return DeliveryOutcome(DeliveryKind.RETRY, after=after, retry_id=head_id)
            with correlation(msg.correlation_id):
                step, observed = _deliver_locked(
                    uow,
                    msg,
                    sender=sender,
                    now=now,
                    started=started,
                    max_attempts=max_attempts,
                )
                log.info("outbox_delivery", outbox_id=head_id, outcome=str(step.kind), after=step.after)
            if step.kind == DeliveryKind.RETRY:
                # The chat's head must wait; everything behind it waits too. This task comes back for it.
                uow.commit()
                _observe(observe, observed)
                after = min(step.after, MAX_RETRY_AFTER_SECONDS)
                return DeliveryOutcome(DeliveryKind.RETRY, after=after, retry_id=head_id)
            if head_id == outbox_id or outcome.kind == DeliveryKind.ALREADY_DONE:
                outcome = step
            # Still the chat's sender: look at the next message before letting go of the chat, so a wait for
            # the chat's next slot costs no extra round of locking (one per message, at Telegram's rate).
            waiting = _next_must_wait(uow, sender, chat_id, now())
            uow.commit()
            _observe(observe, observed)
            if waiting is None:
                continue
            if waiting.kind == DeliveryKind.ALREADY_DONE:
                return outcome
            if waiting.kind == DeliveryKind.RETRY:
                return waiting
            if not _has_pending(uow_factory, chat_id):
                return outcome


def _next_must_wait(
    uow: UnitOfWork, sender: BotApiSender, chat_id: int, now: datetime
) -> DeliveryOutcome | None:
    """After a message is done, with the chat still locked: None when the chat's next message may go now;
    RETRY (its wait recorded on it) when it must wait for the chat's next slot; ALREADY_DONE when it already
    waits for another task's retry; SENT when there is no next message."""
    nxt: OutboxRow | None = uow.outbox.head_of_chat(chat_id)
    if nxt is None:
        return DeliveryOutcome(DeliveryKind.SENT)
    if nxt.not_before is not None and nxt.not_before > now:
        return DeliveryOutcome(DeliveryKind.ALREADY_DONE)  # see "The task that set this wait" above
    # Right behind a call of the same reply, the limiter lends the reply's second call a slot.
    wait = sender.chat_wait(chat_id, reply=nxt.correlation_id)
    if wait <= 0:
        return None
    nxt.not_before = now + timedelta(seconds=wait)  # this task's retry comes back for it then
    return DeliveryOutcome(DeliveryKind.RETRY, after=min(wait, MAX_RETRY_AFTER_SECONDS), retry_id=nxt.id)


def _has_pending(uow_factory: Callable[[], UnitOfWork], chat_id: int) -> bool:
    """The last look after letting go of the chat: a message written meanwhile, whose task found the chat
    busy and returned, is this task's to send."""
    with uow_factory() as look:
        return look.outbox.chat_has_pending(chat_id)


def _observe(observe: Callable[[str], None], observed: str | None) -> None:
    if observed is not None:
        observe(observed)


def _deliver_locked(
    uow: UnitOfWork,
    msg: OutboxRow,
    *,
    sender: BotApiSender,
    now: Callable[[], datetime],
    started: datetime,
    max_attempts: int,
) -> tuple[DeliveryOutcome, str | None]:
    """Send the chat's head and record what happened on it (uncommitted); the outcome and what to count."""
    if uow.users.is_unreachable(msg.chat_id):
        # They blocked the bot (an earlier 403) and haven't written since: Telegram would refuse this too.
        uow.outbox.mark_dropped(msg, reason="the user blocked the bot", now=started)
        return DeliveryOutcome(DeliveryKind.DROPPED), "skipped_unreachable"
    call = _with_chat_id(msg.method, msg.payload, msg.chat_id)
    # The limiter lends a reply's second call the chat's next slot (ratelimit.py): a reply may be written as
    # two messages, by two tasks (Buy's "reserved" edit, then the payments task's Pay button).
    result = sender.send(msg.method, call, reply=msg.correlation_id)
    # A commit failure after a successful send leaves the row pending, and the retry sends again: the Bot
    # API has no idempotency key, so at-least-once is the best this border allows.
    finished = now()
    if isinstance(result, Sent):
        uow.outbox.mark_sent(msg, telegram_message_id=result.message_id, now=finished)
        return DeliveryOutcome(DeliveryKind.SENT, message_id=result.message_id), "sent"
    if isinstance(result, Blocked):
        uow.outbox.mark_dropped(msg, reason=result.reason, now=finished)
        # A private chat's id is the user's id (for a group this matches no user and does nothing).
        uow.users.mark_unreachable(msg.chat_id, finished)
        return DeliveryOutcome(DeliveryKind.DROPPED), "blocked"
    if isinstance(result, Rejected):
        uow.outbox.mark_failed(msg, error=result.reason, now=finished)
        return DeliveryOutcome(DeliveryKind.FAILED), "rejected"
    outcome = _retry(uow, msg, result, now=finished, max_attempts=max_attempts)
    if not result.attempted:
        return outcome, None
    return outcome, "flood_control" if result.reason == FLOOD_CONTROL else str(outcome.kind)


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
        if result.reason == CHAT_RATE_LIMITED:
            # Handed back rather than slept through: the mark that this task's retry is coming back for the
            # message then (other tasks for the chat leave it alone until then). Not an error to record.
            msg.not_before = now + timedelta(seconds=result.after)
        return DeliveryOutcome(DeliveryKind.RETRY, after=result.after)
    if result.reason == FLOOD_CONTROL:
        # Telegram said when to come back: a wait, not a failed attempt. Counting 429s against the bound
        # gave up on messages during a long flood (tests/faults); they must be delayed, not lost.
        uow.outbox.record_wait(msg, reason=result.reason, not_before=now + timedelta(seconds=result.after))
        return DeliveryOutcome(DeliveryKind.RETRY, after=result.after)
    if msg.attempts + 1 >= max_attempts:
        uow.outbox.mark_failed(msg, error=f"gave up after {max_attempts} attempts: {result.reason}", now=now)
        return DeliveryOutcome(DeliveryKind.FAILED)
    after = min(result.after * 2**msg.attempts, BACKOFF_MAX_SECONDS)
    uow.outbox.record_failure(msg, error=result.reason, not_before=now + timedelta(seconds=after))
    return DeliveryOutcome(DeliveryKind.RETRY, after=after)


def _with_chat_id(method: str, payload: dict[str, Any], chat_id: int) -> dict[str, Any]:
    """The Bot API call as sent: rows may keep chat_id in its own column only (it's required there)."""
    if "chat_id" in payload or "inline_message_id" in payload or method == "answerCallbackQuery":
        return payload
    return {"chat_id": chat_id, **payload}
