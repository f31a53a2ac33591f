"""Outbox: a retried use case cannot double-send, and two senders cannot send the same message."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import OutboxMessage
from db.session import make_session_factory
from db.uow import SqlAlchemyUnitOfWork


def _queue(
    uow: SqlAlchemyUnitOfWork, now: datetime, *, dedup_key: str | None = None, chat_id: int | None = None
) -> int | None:
    return uow.outbox.add(
        dedup_key=dedup_key or f"order-paid:{uuid.uuid4()}",
        chat_id=chat_id or random.randint(8 * 10**9, 9 * 10**9),
        method="sendMessage",
        payload={"text": "Your order is confirmed. Pickup code: K7Q2"},
        now=now,
        correlation_id="upd-42",
    )


def _take(uow: SqlAlchemyUnitOfWork, outbox_id: int) -> OutboxMessage | None:
    """What a sender does: become the chat's sender, then take the chat's oldest pending message."""
    chat_id = uow.outbox.chat_of(outbox_id)
    if chat_id is None or not uow.outbox.try_lock_chat(chat_id):
        return None
    head = uow.outbox.head_of_chat(chat_id)
    return head if head is not None and head.id == outbox_id else None


def test_outbox_dedup_key_makes_adds_idempotent(
    session_factory: sessionmaker[Session], now: datetime
) -> None:
    key = f"order-paid:{uuid.uuid4()}"
    # Given the confirmation for an order was queued
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        first = _queue(uow, now, dedup_key=key, chat_id=8_123_456_789)
        uow.commit()
    # When the use case is retried (task redelivered) and queues it again
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        second = _queue(uow, now + timedelta(seconds=5), dedup_key=key)
        uow.commit()
    # Then there is one message, and the retry is told not to enqueue a send
    assert first is not None and second is None
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        rows = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.dedup_key == key)).all()
        assert [(m.id, m.status, m.attempts, m.chat_id) for m in rows] == [
            (first, "pending", 0, 8_123_456_789)
        ]
        assert rows[0].payload == {"text": "Your order is confirmed. Pickup code: K7Q2"}


def test_two_senders_cannot_take_the_same_chat_at_once(
    session_factory: sessionmaker[Session], engine: Engine, now: datetime
) -> None:
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        outbox_id = _queue(uow, now)
        uow.commit()
    assert outbox_id is not None
    other_factory = make_session_factory(engine)
    # Given a sender holding the message while its Bot API call is in flight
    with SqlAlchemyUnitOfWork(session_factory) as first, SqlAlchemyUnitOfWork(other_factory) as second:
        msg = _take(first, outbox_id)
        assert msg is not None
        # When a second sender (a redelivered task) tries the same id on another connection
        # Then it gets nothing, at once, instead of waiting (the first sends the chat's messages)
        assert _take(second, outbox_id) is None
        first.outbox.mark_sent(msg, telegram_message_id=777, now=now)
        first.commit()
        # And after the first one committed, the message is no longer pending for anyone
        assert _take(second, outbox_id) is None
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        sent = uow.session.get(OutboxMessage, outbox_id)
        assert sent is not None
        assert (sent.status, sent.telegram_message_id, sent.sent_at) == ("sent", 777, now)


def test_a_sender_that_dies_mid_send_leaves_the_message_for_the_next(
    session_factory: sessionmaker[Session], now: datetime
) -> None:
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        outbox_id = _queue(uow, now)
        uow.commit()
    assert outbox_id is not None
    # Given a sender that locked the message and then crashed (its transaction rolls back)
    with SqlAlchemyUnitOfWork(session_factory) as crashed:
        assert _take(crashed, outbox_id) is not None
    # When the sweep hands the message to another sender
    with SqlAlchemyUnitOfWork(session_factory) as retry:
        msg = _take(retry, outbox_id)
        # Then it can send it
        assert msg is not None and msg.status == "pending"


def test_failures_are_counted_and_retried_later_until_given_up(
    session_factory: sessionmaker[Session], now: datetime
) -> None:
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        outbox_id = _queue(uow, now)
        uow.commit()
    assert outbox_id is not None
    retry_after = now + timedelta(seconds=30)
    # Given Telegram answered 429 once
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        msg = _take(uow, outbox_id)
        assert msg is not None
        uow.outbox.record_failure(msg, error="Too Many Requests: retry after 30", not_before=retry_after)
        uow.commit()
    # Then it stays pending, due later, and the sweep skips it until then
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        msg = _take(uow, outbox_id)
        assert msg is not None
        assert (msg.status, msg.attempts, msg.not_before) == ("pending", 1, retry_after)
        due_now = uow.outbox.pending_ids(older_than=now + timedelta(seconds=1), now=now, limit=100_000)
        due_later = uow.outbox.pending_ids(
            older_than=now + timedelta(seconds=1), now=retry_after, limit=100_000
        )
        assert outbox_id not in due_now and outbox_id in due_later
        # When it keeps failing past the retry bound
        uow.outbox.mark_failed(msg, error="Bad Gateway", now=retry_after)
        uow.commit()
    # Then it is abandoned as failed, with the final attempt counted
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        failed = uow.session.get(OutboxMessage, outbox_id)
        assert failed is not None
        assert (failed.status, failed.attempts, failed.last_error, failed.abandoned_at) == (
            "failed",
            2,
            "Bad Gateway",
            retry_after,
        )
        assert _take(uow, outbox_id) is None


def test_a_message_to_a_user_who_blocked_the_bot_is_dropped(
    session_factory: sessionmaker[Session], now: datetime
) -> None:
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        outbox_id = _queue(uow, now)
        uow.commit()
    assert outbox_id is not None
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        msg = _take(uow, outbox_id)
        assert msg is not None
        uow.outbox.mark_dropped(msg, reason="Forbidden: bot was blocked by the user", now=now)
        uow.commit()
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        assert _take(uow, outbox_id) is None
        assert outbox_id not in uow.outbox.pending_ids(older_than=now + timedelta(hours=1), now=now)
        dropped = uow.session.get(OutboxMessage, outbox_id)
        assert dropped is not None and (dropped.status, dropped.attempts) == ("dropped", 0)


def test_sweep_finds_pending_messages_whose_send_was_lost_oldest_first(
    session_factory: sessionmaker[Session], now: datetime
) -> None:
    # Given two messages queued a while ago (their send tasks were lost) and one just now
    earlier, later = now - timedelta(minutes=10), now - timedelta(minutes=5)
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        newer_lost = _queue(uow, later)
        older_lost = _queue(uow, earlier)
        fresh = _queue(uow, now)
        uow.commit()
    # When the sweep looks for messages pending for over a minute
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        found = uow.outbox.pending_ids(older_than=now - timedelta(minutes=1), now=now, limit=100_000)
    # Then it finds the two lost ones, oldest first, and leaves the fresh one to its own task
    ours = [i for i in found if i in {newer_lost, older_lost, fresh}]
    assert ours == [older_lost, newer_lost]


def test_a_chats_oldest_pending_message_is_sent_first(
    session_factory: sessionmaker[Session], now: datetime
) -> None:
    chat_id = random.randint(8 * 10**9, 9 * 10**9)
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        older = _queue(uow, now, chat_id=chat_id)
        newer = _queue(uow, now, chat_id=chat_id)
        uow.commit()
    # Given two pending messages for one chat, when the newer one's task runs first
    with SqlAlchemyUnitOfWork(session_factory) as uow:
        assert uow.outbox.try_lock_chat(chat_id)
        head = uow.outbox.head_of_chat(chat_id)
        # Then the head it must send is the older one
        assert head is not None and head.id == older != newer
        assert uow.outbox.chat_has_pending(chat_id)
