"""Fixtures shared by more than one integration test module."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

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
