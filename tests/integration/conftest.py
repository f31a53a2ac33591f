"""Fixtures shared by more than one integration test module."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
import redis.asyncio

from tasks import mailbox
from tasks.adapters.ratelimit import TelegramRateLimiter

LimiterFactory = Callable[..., TelegramRateLimiter]


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


def post_to_mailbox(redis_url: str, user_id: int, update_ids: list[int]) -> None:
    """Store these updates in the user's mailbox as the gateway does (payload `{"u": <update_id>}`)."""

    async def go() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            for update_id in update_ids:
                await mailbox.post(client, user_id, update_id, f'{{"u": {update_id}}}')
        finally:
            await client.aclose()

    asyncio.run(go())


def random_user_id() -> int:
    return random.randint(10**9, 10**12)
