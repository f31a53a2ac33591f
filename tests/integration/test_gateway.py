"""The gateway: checks, classifies and enqueues; answers 2xx only once an update is safely enqueued.

Real Redis (mailbox + broker), the real Celery publisher and the Telegram stand-in; no worker runs here, so
what the gateway enqueued is inspected in Redis directly.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from core.commands import parse_command
from marketbot.fakes.telegram import FakeTelegram
from marketbot.harness import text_update
from tasks import mailbox
from tests.support.gateway import gateway_env, post_update, run_with_gateway


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


def message_update(user_id: int, text: str, update_id: int | None = None) -> dict[str, Any]:
    return text_update(user_id, text, update_id=update_id, first_name="Ana")


def queued_commands(redis_url: str, user_id: int) -> list[Any]:
    client = redis.Redis.from_url(redis_url)
    members = client.zrange(mailbox.queue_key(user_id), 0, -1)
    return [parse_command(client.hget(mailbox.payload_key(user_id), m)) for m in members]


def broker_messages_for(redis_url: str, user_id: int) -> int:
    client = redis.Redis.from_url(redis_url)
    bodies = client.lrange("interactive", 0, -1)
    return sum(1 for b in bodies if f"[[{user_id}]" in json.loads(b)["body"] or _args_have(b, user_id))


def _args_have(raw: bytes, user_id: int) -> bool:
    import base64

    body = json.loads(raw)["body"]
    try:
        decoded = base64.b64decode(body).decode()
    except Exception:
        return False
    return decoded.startswith(f"[[{user_id}]")


def _user() -> int:
    return random.randint(10**9, 9 * 10**9)


def test_start_is_classified_stored_in_the_mailbox_and_a_drain_published(
    redis_url: str, telegram: FakeTelegram
) -> None:
    user = _user()

    async def scenario(http: Any, base: str) -> tuple[int, dict[str, Any]]:
        return await post_update(http, base, message_update(user, "/start"))

    status, body = run_with_gateway(gateway_env(redis_url, telegram.base_url), scenario)

    assert (status, body["outcome"]) == (200, "enqueued")
    (command,) = queued_commands(redis_url, user)
    assert command.kind == "start" and command.actor.telegram_user_id == user
    assert broker_messages_for(redis_url, user) == 1


def test_wrong_secret_is_rejected_and_nothing_enqueued(redis_url: str, telegram: FakeTelegram) -> None:
    user = _user()

    async def scenario(http: Any, base: str) -> list[int]:
        wrong = await post_update(http, base, message_update(user, "/start"), secret="not-the-secret")
        missing = await post_update(http, base, message_update(user, "/start"), secret=None)
        return [wrong[0], missing[0]]

    assert run_with_gateway(gateway_env(redis_url, telegram.base_url), scenario) == [401, 401]
    assert queued_commands(redis_url, user) == []
    assert broker_messages_for(redis_url, user) == 0


def test_malformed_bodies_get_4xx_and_the_gateway_keeps_serving(
    redis_url: str, telegram: FakeTelegram
) -> None:
    user = _user()

    async def scenario(http: Any, base: str) -> list[int]:
        statuses = []
        for raw in (
            b"{not json",
            b"[1, 2]",
            b'{"update_id": "x"}',
            b"\xff\xfe",
            json.dumps({"update_id": 5, "message": {"chat": "nope"}}).encode(),
        ):
            statuses.append((await post_update(http, base, None, raw=raw))[0])
        statuses.append((await post_update(http, base, message_update(user, "/help")))[0])
        return statuses

    assert run_with_gateway(gateway_env(redis_url, telegram.base_url), scenario) == [
        400,
        400,
        400,
        400,
        400,
        200,
    ]
    assert [c.kind for c in queued_commands(redis_url, user)] == ["help"]


def test_duplicate_update_is_enqueued_once(redis_url: str, telegram: FakeTelegram) -> None:
    user = _user()
    update = message_update(user, "hello")

    async def scenario(http: Any, base: str) -> list[str]:
        return [(await post_update(http, base, update))[1]["outcome"] for _ in range(3)]

    assert run_with_gateway(gateway_env(redis_url, telegram.base_url), scenario) == [
        "enqueued",
        "duplicate",
        "duplicate",
    ]
    assert len(queued_commands(redis_url, user)) == 1
    assert broker_messages_for(redis_url, user) == 1


def test_a_flooding_user_is_told_once_to_slow_down_then_dropped(
    redis_url: str, telegram: FakeTelegram
) -> None:
    user = _user()
    env = gateway_env(redis_url, telegram.base_url, USER_RATE_LIMIT="3", USER_RATE_WINDOW_SECONDS="60")

    async def scenario(http: Any, base: str) -> list[str]:
        first = random.randint(10**8, 10**9)
        return [
            (await post_update(http, base, message_update(user, f"m{i}", update_id=first + i)))[1]["outcome"]
            for i in range(6)
        ]

    outcomes = run_with_gateway(env, scenario)
    assert outcomes == ["enqueued"] * 3 + ["rate_limited"] * 3
    assert [c.kind for c in queued_commands(redis_url, user)] == ["text", "text", "text", "slow_down"]


def test_button_press_is_answered_so_the_spinner_stops(redis_url: str, telegram: FakeTelegram) -> None:
    user = _user()
    # The stand-in issues the callback query id, as Telegram does, and refuses to answer unknown ids.
    update = telegram.send_callback(user, "r:c", message_id=9)
    query_id = update["callback_query"]["id"]

    async def scenario(http: Any, base: str) -> int:
        return (await post_update(http, base, update))[0]

    assert run_with_gateway(gateway_env(redis_url, telegram.base_url), scenario) == 200
    telegram.wait_for_calls(
        "answerCallbackQuery", predicate=lambda c: c.params["callback_query_id"] == query_id
    )
    (command,) = queued_commands(redis_url, user)
    assert (command.kind, command.role, command.message_id) == ("choose_role", "customer", 9)


def test_forged_callback_data_becomes_an_invalid_callback_command(
    redis_url: str, telegram: FakeTelegram
) -> None:
    user = _user()
    update = {
        "update_id": random.randint(10**8, 10**9),
        "callback_query": {
            "id": "cbq-2",
            "from": {"id": user, "is_bot": False, "first_name": "X"},
            "chat_instance": "1",
            "data": "admin:verify:1",
        },
    }

    async def scenario(http: Any, base: str) -> int:
        return (await post_update(http, base, update))[0]

    assert run_with_gateway(gateway_env(redis_url, telegram.base_url), scenario) == 200
    assert [c.kind for c in queued_commands(redis_url, user)] == ["invalid_callback"]


def test_broker_unreachable_answers_503_so_telegram_redelivers(telegram: FakeTelegram, tmp_path: Any) -> None:
    dead = f"unix://{tmp_path}/no-redis-here.sock?db=0"
    user = _user()

    async def scenario(http: Any, base: str) -> tuple[int, int]:
        webhook = await post_update(http, base, message_update(user, "/start"))
        async with http.get(f"{base}/readyz") as response:
            return webhook[0], response.status

    assert run_with_gateway(gateway_env(dead, telegram.base_url), scenario) == (503, 503)


def test_health_readiness_and_metrics(redis_url: str, database_url: str, telegram: FakeTelegram) -> None:
    env = gateway_env(redis_url, telegram.base_url, DATABASE_URL=database_url)

    async def scenario(http: Any, base: str) -> tuple[int, dict[str, Any], str]:
        await post_update(http, base, message_update(_user(), "/start"))
        async with http.get(f"{base}/healthz") as health:
            assert health.status == 200
        async with http.get(f"{base}/readyz") as ready:
            ready_body = await ready.json()
            status = ready.status
        async with http.get(f"{base}/metrics") as metrics:
            text = await metrics.text()
        return status, ready_body, text

    status, ready, metrics = run_with_gateway(env, scenario)
    assert status == 200 and ready["checks"] == {"redis": "ok", "broker": "ok", "database": "ok"}
    assert 'marketbot_gateway_updates_total{outcome="enqueued"}' in metrics


def test_long_polling_feeds_updates_through_the_same_path(redis_url: str, telegram: FakeTelegram) -> None:
    user = _user()

    async def scenario(_http: Any, _base: str) -> list[Any]:
        telegram.send_user_message(user, "/start")
        for _ in range(100):
            commands = queued_commands(redis_url, user)
            if commands:
                return commands
            await asyncio.sleep(0.1)
        return []

    (command,) = run_with_gateway(gateway_env(redis_url, telegram.base_url), scenario, polling=True)
    assert command.kind == "start"
    assert telegram.calls("deleteWebhook"), "polling must clear any webhook first"


def test_a_burst_of_concurrent_webhooks_beyond_the_redis_pool_is_all_accepted(
    redis_url: str, telegram: FakeTelegram
) -> None:
    # Given 300 updates arriving at once on as many connections (more than redis-py's default pool of 100)
    env = gateway_env(redis_url, telegram.base_url)
    users = [_user() for _ in range(300)]

    async def scenario(_http: Any, base: str) -> list[int]:
        import asyncio

        import aiohttp

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            results = await asyncio.gather(
                *(post_update(http, base, message_update(u, "/start")) for u in users)
            )
        return [status for status, _ in results]

    statuses = run_with_gateway(env, scenario)

    # Then every one is accepted (none refused with 503 for want of a Redis connection) and queued
    assert statuses == [200] * len(users)
    assert all(len(queued_commands(redis_url, u)) == 1 for u in users[:20])
