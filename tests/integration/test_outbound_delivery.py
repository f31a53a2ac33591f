"""Delivering outbox messages end to end: real PostgreSQL (unit of work), real Redis, fake Telegram server."""

from __future__ import annotations

import random
import threading
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
from tasks.adapters.telegram import BotApiSender, SendResult
from tasks.outbound import DeliveryKind, DeliveryOutcome, deliver_outbox_message

TOKEN = "123456:TEST"


class Clock:
    """The use case's `now`, moved by the test (Telegram's waits are in real time; not_before is ours)."""

    def __init__(self) -> None:
        self.current = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def sender(fake: FakeTelegram, limiter: TelegramRateLimiter) -> Iterator[BotApiSender]:
    s = BotApiSender(token=TOKEN, base_url=fake.base_url, limiter=limiter)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _fresh_calls(fake: FakeTelegram) -> None:
    fake.clear_calls()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def chat_id() -> int:
    return random.randint(10**8, 10**10)


class Outbox:
    """Test helpers over the real unit of work: queue a message, deliver it, read its row back."""

    def __init__(self, session_factory: sessionmaker[Session], sender: BotApiSender, clock: Clock) -> None:
        self.session_factory = session_factory
        self.sender = sender
        self.clock = clock

    def uow(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self.session_factory)

    def add(self, chat_id: int, method: str = "sendMessage", **payload: Any) -> int:
        payload.setdefault("chat_id", chat_id)
        if method in ("sendMessage", "editMessageText"):
            payload.setdefault("parse_mode", "HTML")
        with self.uow() as uow:
            outbox_id = uow.outbox.add(
                dedup_key=f"test:{uuid.uuid4().hex}",
                chat_id=chat_id,
                method=method,
                payload=payload,
                now=self.clock(),
            )
            uow.commit()
        assert outbox_id is not None
        return outbox_id

    def deliver(self, outbox_id: int, *, sender: BotApiSender | None = None, **kw: Any) -> DeliveryOutcome:
        return deliver_outbox_message(
            outbox_id, uow_factory=self.uow, sender=sender or self.sender, now=self.clock, **kw
        )

    def row(self, outbox_id: int) -> OutboxMessage:
        with self.session_factory() as session:
            row = session.get(OutboxMessage, outbox_id)
            assert row is not None
            return row


@pytest.fixture
def outbox(session_factory: sessionmaker[Session], sender: BotApiSender, clock: Clock) -> Outbox:
    return Outbox(session_factory, sender, clock)


def test_a_message_is_delivered_and_marked_sent_with_its_message_id(
    outbox: Outbox, fake: FakeTelegram, chat_id: int
) -> None:
    outbox_id = outbox.add(chat_id, text="<b>Your order is ready</b>")

    outcome = outbox.deliver(outbox_id)

    [call] = fake.calls("sendMessage")
    message_id = call.response["result"]["message_id"]
    assert outcome == DeliveryOutcome(DeliveryKind.SENT, message_id=message_id)
    row = outbox.row(outbox_id)
    assert (row.status, row.telegram_message_id, row.sent_at) == ("sent", message_id, outbox.clock())


def test_flood_control_retries_after_telegrams_wait_and_then_sends_exactly_once(
    outbox: Outbox, fake: FakeTelegram, clock: Clock, chat_id: int
) -> None:
    outbox_id = outbox.add(chat_id, text="Pickup in 30 minutes")
    fake.fail_next("sendMessage", status=429, retry_after=1)

    first = outbox.deliver(outbox_id)

    assert first == DeliveryOutcome(DeliveryKind.RETRY, after=1.0)
    row = outbox.row(outbox_id)
    assert (row.status, row.attempts) == ("pending", 0)  # a wait Telegram asked for, not a failed attempt
    assert row.not_before == clock() + timedelta(seconds=1)

    # A task that runs early does nothing, and doesn't even ask Telegram.
    assert outbox.deliver(outbox_id).kind == DeliveryKind.RETRY
    assert len(fake.calls("sendMessage")) == 1

    clock.advance(1.5)
    assert outbox.deliver(outbox_id).kind == DeliveryKind.SENT  # waits inline for the penalized chat
    assert outbox.deliver(outbox_id).kind == DeliveryKind.ALREADY_DONE
    assert [c.status for c in fake.calls("sendMessage")] == [429, 200]
    assert outbox.row(outbox_id).status == "sent"


def test_a_user_who_blocked_the_bot_is_dropped_marked_unreachable_and_not_retried(
    outbox: Outbox, fake: FakeTelegram, clock: Clock, chat_id: int
) -> None:
    with outbox.uow() as uow:
        uow.users.upsert_from_telegram(
            telegram_user_id=chat_id,
            chat_id=chat_id,
            first_name="Ann",
            username=None,
            language_code="en",
            now=clock(),
        )
        uow.commit()
    fake.block_user(chat_id)
    outbox_id = outbox.add(chat_id, text="Your offer sold out")

    outcome = outbox.deliver(outbox_id)

    assert outcome.kind == DeliveryKind.DROPPED
    row = outbox.row(outbox_id)
    assert (row.status, row.abandoned_at) == ("dropped", clock())
    with outbox.uow() as uow:
        user = uow.users.get_by_telegram_id(chat_id)
        assert user is not None
        assert user.unreachable_at == clock()
    clock.advance(3600)
    assert outbox.deliver(outbox_id).kind == DeliveryKind.ALREADY_DONE
    assert len(fake.calls("sendMessage")) == 1

    # Later messages to them are dropped without asking Telegram again, until they write to the bot
    later = outbox.add(chat_id, text="A new offer nearby")
    assert outbox.deliver(later).kind == DeliveryKind.DROPPED
    assert outbox.row(later).status == "dropped"
    assert len(fake.calls("sendMessage")) == 1
    with outbox.uow() as uow:
        uow.users.mark_reachable(chat_id)
        uow.commit()
    fake.unblock_user(chat_id)
    assert outbox.deliver(outbox.add(chat_id, text="Welcome back")).kind == DeliveryKind.SENT


def test_a_telegram_server_error_is_retried_with_backoff_and_then_given_up(
    outbox: Outbox, fake: FakeTelegram, clock: Clock, chat_id: int
) -> None:
    outbox_id = outbox.add(chat_id, text="Receipt")
    fake.fail_next("sendMessage", status=500, times=3)

    first = outbox.deliver(outbox_id, max_attempts=3)
    clock.advance(first.after)
    second = outbox.deliver(outbox_id, max_attempts=3)
    clock.advance(second.after)
    third = outbox.deliver(outbox_id, max_attempts=3)

    assert (first.kind, second.kind, third.kind) == (
        DeliveryKind.RETRY,
        DeliveryKind.RETRY,
        DeliveryKind.FAILED,
    )
    assert second.after > first.after  # backoff grows with each attempt
    row = outbox.row(outbox_id)
    assert (row.status, row.attempts) == ("failed", 3)
    assert "server_error" in (row.last_error or "")


def test_a_server_error_then_success_delivers_once(
    outbox: Outbox, fake: FakeTelegram, clock: Clock, chat_id: int
) -> None:
    outbox_id = outbox.add(chat_id, text="Receipt")
    fake.fail_next("sendMessage", status=502)

    assert outbox.deliver(outbox_id).kind == DeliveryKind.RETRY
    clock.advance(60)
    assert outbox.deliver(outbox_id).kind == DeliveryKind.SENT

    assert [c.status for c in fake.calls("sendMessage")] == [502, 200]


def test_an_edit_that_changes_nothing_is_a_success(outbox: Outbox, fake: FakeTelegram, chat_id: int) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Buy", "callback_data": "b:1"}]]}
    sent = outbox.deliver(outbox.add(chat_id, text="<b>2 left</b>", reply_markup=keyboard))
    assert sent.message_id is not None

    edit_id = outbox.add(
        chat_id, "editMessageText", text="<b>2 left</b>", message_id=sent.message_id, reply_markup=keyboard
    )
    outcome = outbox.deliver(edit_id)

    assert outcome.kind == DeliveryKind.SENT
    assert outbox.row(edit_id).status == "sent"
    assert fake.calls("editMessageText")[0].status == 400


def test_a_5000_character_text_arrives_as_two_messages(
    outbox: Outbox, fake: FakeTelegram, chat_id: int
) -> None:
    text = "\n\n".join(f"<b>Offer {i}</b> " + "fresh bread " * 8 for i in range(50))
    outbox_id = outbox.add(chat_id, text=text)

    outcome = outbox.deliver(outbox_id)

    calls = fake.calls("sendMessage")
    assert len(calls) == 2
    assert outcome.kind == DeliveryKind.SENT
    assert outbox.row(outbox_id).telegram_message_id == calls[-1].response["result"]["message_id"]


def test_a_message_whose_payload_leaves_chat_id_to_the_row_is_delivered(
    outbox: Outbox, fake: FakeTelegram, chat_id: int
) -> None:
    with outbox.uow() as uow:
        outbox_id = uow.outbox.add(
            dedup_key=f"test:{uuid.uuid4().hex}",
            chat_id=chat_id,
            method="sendMessage",
            payload={"text": "hi"},
            now=outbox.clock(),
        )
        uow.commit()
    assert outbox_id is not None

    assert outbox.deliver(outbox_id).kind == DeliveryKind.SENT
    assert fake.calls("sendMessage")[0].params["chat_id"] == chat_id


def test_a_payload_telegram_would_refuse_fails_without_calling_it(
    outbox: Outbox, fake: FakeTelegram, chat_id: int
) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Buy", "callback_data": "buy:" + "x" * 80}]]}
    outbox_id = outbox.add(chat_id, text="hi", reply_markup=keyboard)

    assert outbox.deliver(outbox_id).kind == DeliveryKind.FAILED
    assert outbox.row(outbox_id).status == "failed"
    assert fake.calls() == []


def test_waiting_for_our_own_rate_limit_is_not_a_failed_attempt(
    outbox: Outbox, fake: FakeTelegram, chat_id: int
) -> None:
    impatient = BotApiSender(
        token=TOKEN, base_url=fake.base_url, limiter=outbox.sender._limiter, max_inline_wait=0.0
    )
    outbox.sender._limiter.penalize(chat_id, 5)
    outbox_id = outbox.add(chat_id, text="hi")
    try:
        outcome = outbox.deliver(outbox_id, sender=impatient)
    finally:
        impatient.close()

    assert outcome.kind == DeliveryKind.RETRY
    assert 4 < outcome.after <= 5
    row = outbox.row(outbox_id)
    assert (row.status, row.attempts, row.not_before) == ("pending", 0, None)
    assert fake.calls() == []


def test_a_split_message_that_fails_halfway_resumes_with_only_the_rest(
    outbox: Outbox, fake: FakeTelegram, clock: Clock, chat_id: int
) -> None:
    caption = "<b>Bakery box</b> " + "Croissants, rolls and rye. " * 60
    outbox_id = outbox.add(chat_id, "sendPhoto", photo="https://example.com/box.jpg", caption=caption)
    fake.fail_next("sendMessage", status=500)  # the photo goes through, the follow-up text doesn't

    assert outbox.deliver(outbox_id).kind == DeliveryKind.RETRY
    row = outbox.row(outbox_id)
    assert row.method == "sendMessage"
    clock.advance(60)
    assert outbox.deliver(outbox_id).kind == DeliveryKind.SENT

    assert len(fake.calls("sendPhoto")) == 1
    first_try, retry = fake.calls("sendMessage")
    assert (first_try.status, retry.status) == (500, 200)
    assert retry.params["text"] == first_try.params["text"]  # the rest, not the photo's caption again


def test_delivering_the_same_message_twice_sends_it_once(
    outbox: Outbox, fake: FakeTelegram, chat_id: int
) -> None:
    outbox_id = outbox.add(chat_id, text="Order confirmed")

    outcomes = [outbox.deliver(outbox_id).kind for _ in range(2)]

    assert outcomes == [DeliveryKind.SENT, DeliveryKind.ALREADY_DONE]
    assert len(fake.calls("sendMessage")) == 1


class _HeldSender(BotApiSender):
    """Pauses inside the Bot API call until released, to run a duplicate delivery in the meantime."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.in_flight = threading.Event()
        self.release = threading.Event()

    def send(self, method: str, payload: dict[str, Any], *, reply: str | None = None) -> SendResult:
        self.in_flight.set()
        assert self.release.wait(10)
        return super().send(method, payload, reply=reply)


def test_a_duplicate_delivery_while_the_first_is_in_flight_sends_nothing(
    outbox: Outbox, fake: FakeTelegram, chat_id: int
) -> None:
    held = _HeldSender(token=TOKEN, base_url=fake.base_url, limiter=outbox.sender._limiter)
    outbox_id = outbox.add(chat_id, text="Order confirmed")
    outcomes: list[DeliveryKind] = []
    first = threading.Thread(target=lambda: outcomes.append(outbox.deliver(outbox_id, sender=held).kind))

    first.start()
    try:
        assert held.in_flight.wait(10)
        # Another worker got the same task while the first is sending: it must not wait, nor send.
        duplicate = threading.Thread(target=lambda: outcomes.append(outbox.deliver(outbox_id).kind))
        duplicate.start()
        duplicate.join(10)
    finally:
        held.release.set()
        first.join(10)
        held.close()

    assert outcomes == [DeliveryKind.ALREADY_DONE, DeliveryKind.SENT]
    assert len(fake.calls("sendMessage")) == 1


def test_a_chats_messages_are_sent_in_the_order_they_were_written(
    outbox: Outbox, fake: FakeTelegram, chat_id: int
) -> None:
    first_id = outbox.add(chat_id, text="first")
    second_id = outbox.add(chat_id, text="second")

    # The second message's task runs first (a different worker picked it up sooner).
    assert outbox.deliver(second_id).kind == DeliveryKind.SENT
    assert outbox.deliver(first_id).kind == DeliveryKind.ALREADY_DONE

    assert [c.params["text"] for c in fake.calls("sendMessage")] == ["first", "second"]


def test_two_threads_racing_for_one_message_send_it_once(
    outbox: Outbox, fake: FakeTelegram, chat_id: int
) -> None:
    outbox_id = outbox.add(chat_id, text="Order confirmed")
    start = threading.Barrier(2)
    outcomes: list[DeliveryKind] = []

    def race() -> None:
        start.wait()
        outcomes.append(outbox.deliver(outbox_id).kind)

    threads = [threading.Thread(target=race) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(outcomes) == [DeliveryKind.ALREADY_DONE, DeliveryKind.SENT]
    assert len(fake.calls("sendMessage")) == 1
