"""Script calls the gateway makes in the same turn of the event loop share one Redis pipeline
(bot_gateway.batching), and each still gets its own answer. Real Redis."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any, TypeVar

import pytest
import redis
import redis.asyncio

from bot_gateway.batching import ScriptBatcher
from bot_gateway.enqueue import Enqueuer
from bot_gateway.publish import KombuRedisMessages
from core.commands import Actor, SendText
from marketbot.harness import free_port
from marketbot.settings import Settings
from tasks import mailbox
from tasks.app import create_app
from tests.integration.conftest import with_async_redis

T = TypeVar("T")

# Echoes its argument after counting the call; refuses 'boom' with an error reply.
ECHO = """
redis.call('INCR', KEYS[1])
if ARGV[1] == 'boom' then return redis.error_reply('refused ' .. ARGV[1]) end
return ARGV[1]
"""


def _connections_received(client: redis.Redis) -> int:
    return int(client.info("stats")["total_connections_received"])


def test_calls_made_together_go_out_in_one_pipeline_and_each_gets_its_own_answer(redis_url: str) -> None:
    counter = f"calls:{random.random()}"
    sync = redis.Redis.from_url(redis_url)
    before = _connections_received(sync)

    # When 20 updates reach the script in the same turn of the loop, through a client with no connection yet
    async def body(client: redis.asyncio.Redis) -> list[Any]:
        batcher = ScriptBatcher(client)
        script = client.register_script(ECHO)
        return await asyncio.gather(*(batcher.run(script, [counter], [f"u{i}"]) for i in range(20)))

    answers = with_async_redis(redis_url, body)

    # Then each gets its own answer, every script ran once, and they shared one connection
    assert answers == [f"u{i}".encode() for i in range(20)]
    assert int(sync.get(counter) or 0) == 20
    assert _connections_received(sync) - before == 1


def test_a_script_error_fails_only_the_call_that_ran_it(redis_url: str) -> None:
    counter = f"calls:{random.random()}"

    async def body(client: redis.asyncio.Redis) -> list[Any]:
        batcher = ScriptBatcher(client)
        script = client.register_script(ECHO)
        calls = [batcher.run(script, [counter], [arg]) for arg in ("a", "boom", "c")]
        return await asyncio.gather(*calls, return_exceptions=True)

    first, refused, third = with_async_redis(redis_url, body)

    assert (first, third) == (b"a", b"c")
    assert isinstance(refused, redis.ResponseError) and "refused boom" in str(refused)


def test_a_batch_after_the_script_cache_was_flushed_loads_the_script_and_runs_every_call(
    redis_url: str,
) -> None:
    counter = f"calls:{random.random()}"

    # Given a script Redis no longer knows (a restarted server, SCRIPT FLUSH)
    async def body(client: redis.asyncio.Redis) -> list[Any]:
        batcher = ScriptBatcher(client)
        script = client.register_script(ECHO)
        await batcher.run(script, [counter], ["warm"])
        await client.script_flush()
        # When a batch of calls runs it
        return await asyncio.gather(*(batcher.run(script, [counter], [f"u{i}"]) for i in range(5)))

    # Then every call ran exactly once
    assert with_async_redis(redis_url, body) == [f"u{i}".encode() for i in range(5)]
    assert int(redis.Redis.from_url(redis_url).get(counter) or 0) == 6


def test_when_redis_is_unreachable_every_call_of_the_batch_fails() -> None:
    async def body() -> list[Any]:
        client = redis.asyncio.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
        try:
            batcher = ScriptBatcher(client)
            script = client.register_script(ECHO)
            calls = [batcher.run(script, ["k"], [str(i)]) for i in range(4)]
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await client.aclose()

    outcomes = asyncio.run(body())

    assert all(isinstance(o, redis.ConnectionError) for o in outcomes), outcomes


@pytest.mark.parametrize("together", [1, 40])
def test_many_users_updates_arriving_together_are_each_stored_and_published_once(
    redis_url: str, together: int
) -> None:
    users = [random.randint(10**9, 9 * 10**9) for _ in range(together)]
    update_ids = [random.randint(10**8, 10**9) for _ in users]
    messages = KombuRedisMessages(create_app(Settings(REDIS_URL=redis_url)))

    def command(user: int, update_id: int) -> SendText:
        actor = Actor(telegram_user_id=user, chat_id=user, first_name="Ana")
        return SendText.model_validate(
            {
                "update_id": update_id,
                "actor": actor,
                "received_at": "2026-01-01T00:00:00Z",
                "correlation_id": f"tg-{update_id}",
                "text": "hi",
            }
        )

    async def body(client: redis.asyncio.Redis) -> tuple[list[str], list[str]]:
        enqueuer = Enqueuer(client, rate_limit=100, rate_window_s=60, messages=messages)
        commands = [command(u, i) for u, i in zip(users, update_ids, strict=True)]
        first = await asyncio.gather(*(enqueuer.admit_and_post(c) for c in commands))
        again = await asyncio.gather(*(enqueuer.admit_and_post(c) for c in commands))
        return list(first), list(again)

    first, again = with_async_redis(redis_url, body)

    assert first == ["enqueued"] * together and again == ["duplicate"] * together
    sync = redis.Redis.from_url(redis_url)
    for user, update_id in zip(users, update_ids, strict=True):
        assert sync.zrange(mailbox.queue_key(user), 0, -1) == [str(update_id).encode()]
    published = [json.loads(raw)["headers"]["argsrepr"] for raw in sync.lrange(messages.queue_key, 0, -1)]
    assert all(published.count(f"[{user}]") == 1 for user in users)
