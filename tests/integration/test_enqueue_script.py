"""The gateway's one-round-trip enqueue (bot_gateway.enqueue) keeps every rule of the steps it replaced.

One Lua script dedupes the update, counts the user's rate, stores the command in the mailbox exactly as
`tasks.mailbox.post` does (the worker's drain reads those keys) and pushes the drain message. Real Redis;
the ingest path is driven with real aiogram Updates.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
import redis
import redis.asyncio
from aiogram import Bot
from aiogram.types import Update

from bot_gateway.app import build_enqueuer
from bot_gateway.dispatch import build_dispatcher
from bot_gateway.enqueue import DEDUP_TTL_SECONDS, EnqueueFailed, Enqueuer, dedup_key
from bot_gateway.ingest import Ingestor
from bot_gateway.publish import CeleryDrainPublisher, KombuRedisMessages, RedisDrainPublisher
from core.commands import Actor, SendText, dump_command, parse_command
from marketbot.harness import text_update
from marketbot.settings import Settings, redis_url_for_celery
from tasks import mailbox
from tasks.app import CORRELATION_HEADER, create_app
from tasks.names import QUEUE_INTERACTIVE
from tests.integration.conftest import with_async_redis

T = TypeVar("T")
BOT = Bot("123456:TEST-token")


def _user() -> int:
    return random.randint(10**9, 9 * 10**9)


def _update_id() -> int:
    return random.randint(10**8, 10**9)


def _command(user: int, update_id: int, text: str = "hi") -> SendText:
    return SendText(
        update_id=update_id,
        actor=Actor(telegram_user_id=user, chat_id=user, first_name="Ana"),
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
        correlation_id=f"tg-{update_id}",
        text=text,
    )


def _other_db(url: str, db: int) -> str:
    if url.startswith("unix://"):
        return url.split("?", 1)[0] + f"?db={db}"
    head = url.split("?", 1)[0]
    return head.rsplit("/", 1)[0] + f"/{db}"


def _drains_for(client: redis.Redis, user: int, key: str = QUEUE_INTERACTIVE) -> list[dict[str, Any]]:
    messages = [json.loads(raw) for raw in client.lrange(key, 0, -1)]
    return [m for m in messages if m["headers"]["argsrepr"] == f"[{user}]"]


def _inline_enqueuer(client: redis.asyncio.Redis, redis_url: str, rate_limit: int = 100) -> Enqueuer:
    messages = KombuRedisMessages(create_app(Settings(REDIS_URL=redis_url)))  # type: ignore[call-arg]
    return Enqueuer(client, rate_limit=rate_limit, rate_window_s=60, messages=messages)


def test_the_script_stores_a_command_exactly_as_the_mailbox_post_does(redis_url: str) -> None:
    # Given one user's command stored by tasks.mailbox.post and another's by the gateway's script
    theirs, ours, update_id = _user(), _user(), _update_id()

    async def body(client: redis.asyncio.Redis) -> str:
        await mailbox.post(client, theirs, update_id, dump_command(_command(theirs, update_id)))
        return await _inline_enqueuer(client, redis_url).admit_and_post(_command(ours, update_id))

    assert with_async_redis(redis_url, body) == "enqueued"

    # Then both mailboxes hold the same entry, with the same expiry, and both users are active
    sync = redis.Redis.from_url(redis_url)
    for user in (theirs, ours):
        assert sync.zrange(mailbox.queue_key(user), 0, -1, withscores=True) == [
            (str(update_id).encode(), update_id)
        ]
        (stored,) = sync.hvals(mailbox.payload_key(user))
        assert parse_command(stored) == _command(user, update_id)
        for key in (mailbox.queue_key(user), mailbox.payload_key(user)):
            assert mailbox.KEY_TTL_SECONDS - 5 <= sync.ttl(key) <= mailbox.KEY_TTL_SECONDS
    scores = [sync.zscore(mailbox.ACTIVE_SET, user) for user in (theirs, ours)]
    assert None not in scores and abs(scores[0] - scores[1]) < 5  # type: ignore[operator]
    # And the gateway's script also published the drain for its user, with the update's correlation id
    (drain,) = _drains_for(sync, ours)
    assert drain["headers"][CORRELATION_HEADER] == f"tg-{update_id}"
    assert 0 < sync.ttl(dedup_key(update_id)) <= DEDUP_TTL_SECONDS


def test_a_redelivered_update_is_stored_and_published_once(redis_url: str) -> None:
    user, update_id = _user(), _update_id()

    async def body(client: redis.asyncio.Redis) -> list[str]:
        enqueuer = _inline_enqueuer(client, redis_url)
        return [await enqueuer.admit_and_post(_command(user, update_id)) for _ in range(3)]

    assert with_async_redis(redis_url, body) == ["enqueued", "duplicate", "duplicate"]
    sync = redis.Redis.from_url(redis_url)
    assert sync.zcard(mailbox.queue_key(user)) == 1
    assert len(_drains_for(sync, user)) == 1


def _ingestor(enqueuer: Enqueuer) -> Ingestor:
    return Ingestor(bot=BOT, dispatcher=build_dispatcher(), enqueuer=enqueuer)


def _update(user: int, text: str, update_id: int | None = None) -> Update:
    raw = text_update(user, text, update_id=update_id or _update_id(), first_name="Ana")
    return Update.model_validate(raw, context={"bot": BOT})


def test_a_flooding_user_is_told_once_per_window_and_each_slow_down_is_published(redis_url: str) -> None:
    user = _user()

    async def body(client: redis.asyncio.Redis) -> list[str]:
        ingestor = _ingestor(_inline_enqueuer(client, redis_url, rate_limit=2))
        return [await ingestor.ingest(_update(user, f"m{i}")) for i in range(5)]

    assert with_async_redis(redis_url, body) == [
        "enqueued",
        "enqueued",
        "rate_limited",
        "rate_limited",
        "rate_limited",
    ]
    sync = redis.Redis.from_url(redis_url)
    kinds = [parse_command(raw).kind for raw in sync.hvals(mailbox.payload_key(user))]
    assert sorted(kinds) == ["slow_down", "text", "text"]
    assert len(_drains_for(sync, user)) == 3  # one per stored command, the slow-down included


class FlakyPublisher:
    """Fails its first publish, as a broker that is briefly away would."""

    def __init__(self, inner: RedisDrainPublisher) -> None:
        self.inner = inner
        self.failures_left = 1

    async def publish(self, user_id: int, correlation_id: str) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("broker away")
        await self.inner.publish(user_id, correlation_id)


def test_a_broker_on_another_redis_gets_the_drain_and_a_failed_publish_lets_the_redelivery_in(
    redis_url: str,
) -> None:
    # Given the broker on another Redis database, failing once
    broker_url = _other_db(redis_url, 5)
    user, update_id = _user(), _update_id()
    update = _update(user, "/start", update_id)

    async def body(client: redis.asyncio.Redis) -> tuple[bool, bool, str]:
        broker = redis.asyncio.Redis.from_url(broker_url)
        try:
            messages = KombuRedisMessages(create_app(Settings(REDIS_URL=redis_url)))  # type: ignore[call-arg]
            publisher = FlakyPublisher(RedisDrainPublisher(broker, messages))
            ingestor = _ingestor(Enqueuer(client, rate_limit=100, rate_window_s=60, publisher=publisher))
            # When the first delivery fails to publish
            with pytest.raises(EnqueueFailed):
                await ingestor.ingest(update)
            marker_after_failure = bool(await client.exists(dedup_key(update_id)))
            # Then Telegram's redelivery is processed, not taken for a duplicate
            outcome = await ingestor.ingest(update)
            return marker_after_failure, bool(await client.exists(dedup_key(update_id))), outcome
        finally:
            await broker.aclose()

    assert with_async_redis(redis_url, body) == (False, True, "enqueued")
    # And the drain is on the broker's list, not on the mailbox Redis
    assert len(_drains_for(redis.Redis.from_url(broker_url), user)) == 1
    assert _drains_for(redis.Redis.from_url(redis_url), user) == []


def test_a_non_redis_broker_path_publishes_through_celery(redis_url: str) -> None:
    user, update_id = _user(), _update_id()
    app = create_app(Settings(REDIS_URL=redis_url))  # type: ignore[call-arg]

    async def body(client: redis.asyncio.Redis) -> str:
        enqueuer = Enqueuer(client, rate_limit=100, rate_window_s=60, publisher=CeleryDrainPublisher(app))
        return await enqueuer.admit_and_post(_command(user, update_id))

    assert with_async_redis(redis_url, body) == "enqueued"
    (drain,) = _drains_for(redis.Redis.from_url(redis_url), user)
    assert drain["headers"][CORRELATION_HEADER] == f"tg-{update_id}"


def test_the_publish_path_follows_the_broker_url(redis_url: str) -> None:
    async def body(client: redis.asyncio.Redis) -> list[tuple[bool, str | None]]:
        chosen = []
        other_redis = redis_url_for_celery(_other_db(redis_url, 5))  # as Celery spells it
        for broker_url in (None, other_redis, "amqp://guest@127.0.0.1:1//"):
            settings = Settings(REDIS_URL=redis_url, CELERY_BROKER_URL=broker_url)  # type: ignore[call-arg]
            app = create_app(settings)
            broker = None if broker_url and broker_url.startswith("amqp") else client
            if broker_url and broker is not None:
                broker = redis.asyncio.Redis.from_url(_other_db(redis_url, 5))
            enqueuer = build_enqueuer(settings, client, broker, app)
            publisher = type(enqueuer.publisher).__name__ if enqueuer.publisher is not None else None
            chosen.append((enqueuer.messages is not None, publisher))
            if broker is not None and broker is not client:
                await broker.aclose()
        return chosen

    assert with_async_redis(redis_url, body) == [
        (True, None),  # the broker is REDIS_URL: the drain goes into the mailbox script
        (False, "RedisDrainPublisher"),  # another Redis: one LPUSH on its client
        (False, "CeleryDrainPublisher"),  # AMQP: through Celery
    ]
