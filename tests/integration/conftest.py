"""Fixtures shared by more than one integration test module."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
import redis
import redis.asyncio
from sqlalchemy.orm import Session, sessionmaker

from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from marketbot.fakes.telegram import FakeTelegram
from tasks import mailbox
from tasks.adapters.ratelimit import TelegramRateLimiter

LimiterFactory = Callable[..., TelegramRateLimiter]
UowFactory = Callable[[], SqlAlchemyUnitOfWork]
T = TypeVar("T")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@pytest.fixture(scope="module")
def limiter(redis_url: str) -> Iterator[TelegramRateLimiter]:
    # A fresh bot key: this module's buckets start full; every test uses chats of its own.
    client = redis.Redis.from_url(redis_url)
    yield TelegramRateLimiter(client, bot_key=f"test-{uuid.uuid4().hex[:8]}")
    client.close()


@pytest.fixture(scope="module")
def session_factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def uow_factory(database_url: str) -> Iterator[UowFactory]:
    """Units of work on this test's own engine, its pool large enough for the tests that race 20 threads."""
    engine = make_engine(database_url, pool_size=20, max_overflow=30)
    factory = make_session_factory(engine)
    yield lambda: SqlAlchemyUnitOfWork(factory)
    engine.dispose()


@pytest.fixture
def make_limiter(redis_url: str) -> Iterator[LimiterFactory]:
    """Limiters for one fresh bot (so tests never share buckets), each on its own Redis connection."""
    bot_key = f"test-{uuid.uuid4().hex[:8]}"
    clients: list[redis.Redis] = []

    def make(**kw: float) -> TelegramRateLimiter:
        client = redis.Redis.from_url(redis_url)
        clients.append(client)
        return TelegramRateLimiter(client, bot_key=bot_key, **kw)  # type: ignore[arg-type]

    yield make
    for client in clients:
        client.close()


def with_async_redis(redis_url: str, body: Callable[[redis.asyncio.Redis], Awaitable[T]]) -> T:
    """Run `body` with an asyncio Redis client of its own, in an event loop of its own."""

    async def main() -> T:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            return await body(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def post_to_mailbox(redis_url: str, user_id: int, update_ids: list[int]) -> None:
    """Store these updates in the user's mailbox as the gateway does (payload `{"u": <update_id>}`)."""

    async def post(client: redis.asyncio.Redis) -> None:
        for update_id in update_ids:
            await mailbox.post(client, user_id, update_id, f'{{"u": {update_id}}}')

    with_async_redis(redis_url, post)


def random_user_id() -> int:
    return random.randint(10**9, 10**12)
