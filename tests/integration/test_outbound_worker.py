"""A backlog in many chats through a real outbound worker (`marketbot worker --queues outbound`, the thread
pool such a worker runs): every chat progresses at once, each at one message per second, in order, and the
Telegram stand-in never answers 429."""

from __future__ import annotations

import itertools
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from marketbot.cli import worker_pool
from marketbot.fakes.telegram import FakeTelegram
from marketbot.harness import Process, start_worker
from tasks.app import app
from tasks.names import QUEUE_INTERACTIVE, QUEUE_OUTBOUND, SEND_OUTBOX_MESSAGE

pytestmark = pytest.mark.slow

CHATS = 8
PER_CHAT = 4


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(global_limit=(30, 1.0)) as server:  # Telegram's limits: 30/s per bot, ~1/s per chat
        yield server


@pytest.fixture(scope="module")
def worker(database_url: str, redis_url: str, fake: FakeTelegram) -> Iterator[Process]:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TELEGRAM_BOT_TOKEN": f"{uuid.uuid4().int % 10**9}:outbound-worker-test",
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "LOG_FORMAT": "json",
    }
    process = start_worker(env, name="outbound", queues=QUEUE_OUTBOUND, concurrency=2)
    try:
        yield process
    finally:
        process.stop()


def _queue(database_url: str, chats: list[int]) -> list[int]:
    engine = make_engine(database_url)
    ids: list[int] = []
    try:
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            for n in range(PER_CHAT):
                for chat in chats:
                    outbox_id = uow.outbox.add(
                        dedup_key=f"test:{uuid.uuid4().hex}",
                        chat_id=chat,
                        method="sendMessage",
                        payload={"text": f"{chat} #{n}"},
                        now=datetime.now(UTC),
                    )
                    assert outbox_id is not None
                    ids.append(outbox_id)
            uow.commit()
    finally:
        engine.dispose()
    return ids


def test_an_outbound_worker_runs_threads_and_other_workers_processes() -> None:
    assert worker_pool([QUEUE_OUTBOUND]) == "threads"
    assert worker_pool([QUEUE_INTERACTIVE, QUEUE_OUTBOUND]) == "prefork"


def test_a_backlog_in_many_chats_goes_out_at_one_per_second_per_chat_and_all_chats_at_once(
    worker: Process, fake: FakeTelegram, database_url: str
) -> None:
    # Given 8 chats with 4 messages each, one send task published per message (as use cases do)
    first_chat = 7 * 10**9 + uuid.uuid4().int % 10**8
    chats = list(range(first_chat, first_chat + CHATS))
    for outbox_id in _queue(database_url, chats):
        app.send_task(SEND_OUTBOX_MESSAGE, args=[outbox_id])

    # When the worker delivers them
    def delivered() -> list[float]:
        return [c.at for c in fake.calls("sendMessage") if c.status == 200 and c.params["chat_id"] in chats]

    deadline = time.monotonic() + 60
    while len(delivered()) < CHATS * PER_CHAT and time.monotonic() < deadline:
        time.sleep(0.2)

    # Then all arrive, each chat's in the order written, about one per second in a chat
    calls = [c for c in fake.calls("sendMessage") if c.params["chat_id"] in chats]
    assert [c.status for c in calls] == [200] * CHATS * PER_CHAT  # and never a 429
    per_chat: dict[int, list[tuple[float, str]]] = defaultdict(list)
    for call in calls:
        per_chat[int(call.params["chat_id"])].append((call.at, str(call.params["text"])))
    for chat, sent in per_chat.items():
        assert [text for _, text in sent] == [f"{chat} #{n}" for n in range(PER_CHAT)]
        assert all(b - a >= 0.7 for (a, _), (b, _) in itertools.pairwise(sent)), sent
    # The chats went in parallel: a worker asleep on one chat at a time would need 8 × 3 s / 2 ≥ 12 s
    times = sorted(delivered())
    assert times[-1] - times[0] < 10
