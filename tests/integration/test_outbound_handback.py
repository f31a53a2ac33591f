"""A chat's messages wait for the chat's next send slot without holding a worker: the task that finds the
wait records it on the message and comes back for it; other tasks leave the chat to that one.

Real PostgreSQL (unit of work), real Redis (the shared limiter), the Telegram stand-in through aiogram, and
the sender as workers build it (tasks/runtime.py: chat waits handed back, not slept through).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.models import OutboxMessage
from db.uow import SqlAlchemyUnitOfWork
from marketbot.fakes.telegram import FakeTelegram
from tasks.adapters.ratelimit import TelegramRateLimiter
from tasks.adapters.telegram import CHAT_RATE_LIMITED, BotApiSender, Rejected, RetryLater, Sent
from tasks.outbound import (
    CHAT_BUSY_RETRY_SECONDS,
    MAX_RETRY_AFTER_SECONDS,
    DeliveryKind,
    DeliveryOutcome,
    deliver_outbox_message,
)

TOKEN = "123456:TEST"


class Clock:
    """The use case's `now`, following real time (the limiter's waits are real), movable by the test."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def sender(fake: FakeTelegram, limiter: TelegramRateLimiter) -> Iterator[BotApiSender]:
    s = BotApiSender(token=TOKEN, base_url=fake.base_url, limiter=limiter, hand_back_chat_waits=True)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _fresh_calls(fake: FakeTelegram) -> None:
    fake.clear_calls()


@pytest.fixture
def chat_id() -> int:
    return random.randint(10**8, 10**10)


class Outbox:
    def __init__(self, session_factory: sessionmaker[Session], sender: BotApiSender) -> None:
        self.session_factory = session_factory
        self.sender = sender
        self.clock = Clock()

    def uow(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self.session_factory)

    def add(self, chat_id: int, text: str, *, reply: str | None = None) -> int:
        """Queue a message; `reply`: the correlation id of the update it answers (one reply, one id)."""
        with self.uow() as uow:
            outbox_id = uow.outbox.add(
                dedup_key=f"test:{uuid.uuid4().hex}",
                chat_id=chat_id,
                method="sendMessage",
                payload={"chat_id": chat_id, "text": text},
                now=self.clock(),
                correlation_id=reply,
            )
            uow.commit()
        assert outbox_id is not None
        return outbox_id

    def deliver(self, outbox_id: int, **kw: Any) -> DeliveryOutcome:
        return deliver_outbox_message(
            outbox_id, uow_factory=self.uow, sender=self.sender, now=self.clock, **kw
        )

    def row(self, outbox_id: int) -> OutboxMessage:
        with self.session_factory() as session:
            row = session.get(OutboxMessage, outbox_id)
            assert row is not None
            return row


@pytest.fixture
def outbox(session_factory: sessionmaker[Session], sender: BotApiSender) -> Outbox:
    return Outbox(session_factory, sender)


def _texts(fake: FakeTelegram) -> list[str]:
    return [str(c.params["text"]) for c in fake.calls("sendMessage") if c.status == 200]


def test_a_chats_next_message_is_handed_back_with_its_wait_not_slept_through(
    outbox: Outbox, fake: FakeTelegram, chat_id: int
) -> None:
    first = outbox.add(chat_id, "Order confirmed")
    second = outbox.add(chat_id, "Pickup from 18:00")

    started = time.monotonic()
    outcome = outbox.deliver(first)
    took = time.monotonic() - started

    # The first goes out; the second must wait for the chat's next slot (one per second), and the task
    # comes back for it instead of sleeping
    assert _texts(fake) == ["Order confirmed"]
    assert outcome.kind == DeliveryKind.RETRY
    assert outcome.retry_id == second
    assert 0.5 < outcome.after <= 1.0
    assert took < 0.5
    row = outbox.row(second)
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, None)  # a wait, not an error
    assert row.not_before is not None
    assert abs((row.not_before - outbox.clock()).total_seconds() - outcome.after) < 0.3


def test_the_retry_sends_the_next_message_once_its_slot_opens(
    outbox: Outbox, fake: FakeTelegram, chat_id: int
) -> None:
    outbox.add(chat_id, "Order confirmed")
    second = outbox.add(chat_id, "Pickup from 18:00")
    handed_back = outbox.deliver(second)  # the second's own task drains the chat from its head
    assert handed_back.retry_id == second

    # Coming back early changes nothing and asks Telegram nothing
    early = outbox.deliver(second, retried=True)
    assert early.kind == DeliveryKind.RETRY and early.retry_id == second
    assert _texts(fake) == ["Order confirmed"]

    time.sleep(handed_back.after)
    assert outbox.deliver(second, retried=True).kind == DeliveryKind.SENT

    assert _texts(fake) == ["Order confirmed", "Pickup from 18:00"]
    first_at, second_at = (c.at for c in fake.calls("sendMessage"))
    assert second_at - first_at >= 0.9  # one per second in a chat
    assert outbox.row(second).status == "sent"


def test_other_tasks_for_a_waiting_chat_leave_it_to_the_task_coming_back(
    outbox: Outbox, fake: FakeTelegram, chat_id: int
) -> None:
    first = outbox.add(chat_id, "one")
    second = outbox.add(chat_id, "two")
    third = outbox.add(chat_id, "three")
    assert outbox.deliver(first).retry_id == second

    # The third message's own task finds the chat waiting for the retry that carries the second: it
    # leaves at once, sending nothing and scheduling nothing (one task per waiting chat, not one per message)
    assert outbox.deliver(third) == DeliveryOutcome(DeliveryKind.ALREADY_DONE)
    assert _texts(fake) == ["one"]
    assert outbox.row(third).not_before is None


def test_a_reply_of_two_calls_arrives_at_once_and_the_chat_pays_it_back(
    outbox: Outbox, fake: FakeTelegram, chat_id: int
) -> None:
    # Given one update's reply written as two messages (same correlation id), then the next reply
    photo_like = outbox.add(chat_id, "Bakery box, 2 left", reply="upd-1")
    edit_like = outbox.add(chat_id, "Reserved: 1", reply="upd-1")
    next_reply = outbox.add(chat_id, "Anything else?", reply="upd-2")

    outcome = outbox.deliver(photo_like)

    # The reply's second call goes right behind its first; the next reply waits for the credit it used
    assert _texts(fake) == ["Bakery box, 2 left", "Reserved: 1"]
    first_at, second_at = (c.at for c in fake.calls("sendMessage"))
    assert second_at - first_at < 0.5
    assert outcome.kind == DeliveryKind.RETRY and outcome.retry_id == next_reply
    assert 1.5 < outcome.after <= 2.0  # two messages, two seconds: still one per second in this chat
    assert outbox.row(edit_like).status == "sent"


def test_a_replys_second_message_written_later_by_another_task_goes_right_behind_the_first(
    outbox: Outbox, fake: FakeTelegram, chat_id: int
) -> None:
    # Given Buy's reply ("reserved") already sent by its own task
    reserved = outbox.add(chat_id, "Reserved: 1, preparing payment", reply="upd-buy")
    assert outbox.deliver(reserved).kind == DeliveryKind.SENT

    # When the payments task adds the Pay button to the same reply a moment later, in a task of its own
    pay = outbox.add(chat_id, "Pay 4.50", reply="upd-buy")
    outcome = outbox.deliver(pay)

    # Then it goes at once (the reply's one call of credit), and the chat's next reply pays that back
    assert outcome.kind == DeliveryKind.SENT
    assert _texts(fake) == ["Reserved: 1, preparing payment", "Pay 4.50"]
    next_reply = outbox.add(chat_id, "Anything else?", reply="upd-next")
    waited = outbox.deliver(next_reply)
    assert waited.kind == DeliveryKind.RETRY and 1.5 < waited.after <= 2.0


def test_a_backlog_without_replies_gets_no_burst(outbox: Outbox, fake: FakeTelegram, chat_id: int) -> None:
    ids = [outbox.add(chat_id, f"offer {i}") for i in range(3)]  # e.g. reminders: no update behind them

    outcome = outbox.deliver(ids[0])

    assert _texts(fake) == ["offer 0"]
    assert outcome.retry_id == ids[1]


def test_a_retry_that_finds_the_chat_busy_looks_again_shortly(
    outbox: Outbox, session_factory: sessionmaker[Session], fake: FakeTelegram, chat_id: int
) -> None:
    outbox_id = outbox.add(chat_id, "hi")
    with SqlAlchemyUnitOfWork(session_factory) as holder:
        assert holder.outbox.try_lock_chat(chat_id)  # another sender is on this chat right now

        # A first delivery leaves the message to that sender; a retry may be the only one coming back
        # for the chat, so it looks again rather than trust the other sender to have seen its message
        assert outbox.deliver(outbox_id).kind == DeliveryKind.ALREADY_DONE
        again = outbox.deliver(outbox_id, retried=True)
        assert (again.kind, again.after, again.retry_id) == (
            DeliveryKind.RETRY,
            CHAT_BUSY_RETRY_SECONDS,
            outbox_id,
        )
    assert outbox.deliver(outbox_id, retried=True).kind == DeliveryKind.SENT
    assert _texts(fake) == ["hi"]


def test_a_wait_longer_than_the_broker_holds_a_retry_is_split(
    outbox: Outbox, fake: FakeTelegram, chat_id: int
) -> None:
    outbox_id = outbox.add(chat_id, "Receipt")
    fake.fail_next("sendMessage", status=429, retry_after=1000)

    outcome = outbox.deliver(outbox_id)

    # Telegram's wait is kept on the row; the retry comes back within the broker's visibility timeout
    assert (outcome.kind, outcome.after) == (DeliveryKind.RETRY, MAX_RETRY_AFTER_SECONDS)
    row = outbox.row(outbox_id)
    assert row.not_before is not None
    assert 990 < (row.not_before - outbox.clock()).total_seconds() <= 1000
    outbox.clock.advance(MAX_RETRY_AFTER_SECONDS)
    early = outbox.deliver(outbox_id, retried=True)
    assert (early.kind, early.after) == (DeliveryKind.RETRY, MAX_RETRY_AFTER_SECONDS)
    assert len(fake.calls("sendMessage")) == 1


# -- the sender on its own ---------------------------------------------------------------------------------


def test_the_sender_hands_a_chats_wait_back_at_once(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    assert isinstance(sender.send("sendMessage", {"chat_id": chat_id, "text": "one"}), Sent)

    started = time.monotonic()
    result = sender.send("sendMessage", {"chat_id": chat_id, "text": "two"})

    assert isinstance(result, RetryLater)
    assert (result.reason, result.attempted) == (CHAT_RATE_LIMITED, False)
    assert 0.5 < result.after <= 1.0
    assert time.monotonic() - started < 0.3
    assert _texts(fake) == ["one"]
    assert 0.5 < sender.chat_wait(chat_id) <= 1.0


def test_a_long_text_arrives_whole_its_parts_riding_on_the_replys_credit(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    text = "\n\n".join(f"Offer {i}: " + "fresh bread " * 8 for i in range(50))  # two messages' worth

    result = sender.send("sendMessage", {"chat_id": chat_id, "text": text})

    assert isinstance(result, Sent)
    first, second = fake.calls("sendMessage")
    assert second.at - first.at < 0.5


def test_a_payload_telegram_would_refuse_takes_no_slot(
    sender: BotApiSender, fake: FakeTelegram, chat_id: int
) -> None:
    refused = sender.send("sendPhoto", {"chat_id": chat_id, "photo": 42})  # not a file id or URL

    assert isinstance(refused, Rejected)
    assert sender.chat_wait(chat_id) == 0.0
    # (had the refusal taken the chat's slot, this would be handed back for a second)
    assert isinstance(sender.send("sendMessage", {"chat_id": chat_id, "text": "hi"}), Sent)
    assert [c.method for c in fake.calls()] == ["sendMessage"]
