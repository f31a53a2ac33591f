"""The gateway's own drain publisher writes what Celery would, and a real worker consumes and runs it.

The gateway pushes "drain user U" straight onto kombu's Redis list (bot_gateway.publish) instead of calling
`send_task`. These tests hold it to Celery: the message has the structure `send_task` writes, field for field
(only the ids differ), on the same list, and a real `marketbot worker` runs it with our correlation id.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery

from bot_gateway.publish import (
    DRAIN_BODY,
    KombuRedisMessages,
    direct_redis_supported,
    kombu_queue_key,
    redis_py_url,
)
from marketbot.fakes.telegram import FakeTelegram
from marketbot.harness import Process, start_worker, text_update
from marketbot.settings import Settings
from tasks.app import CORRELATION_HEADER, create_app
from tasks.names import DRAIN_USER_MAILBOX, QUEUE_INTERACTIVE, QUEUE_OUTBOUND
from tests.support.gateway import gateway_env, post_update, run_with_gateway

# The fields `send_task` fills with fresh ids: they may differ, everything else must not.
_ID_FIELDS = {("headers", "id"), ("headers", "root_id"), ("properties", "correlation_id")}
_ID_FIELDS |= {("properties", "delivery_tag")}


def _celery(redis_url: str, **conf: Any) -> Celery:
    app = create_app(Settings(REDIS_URL=redis_url))  # type: ignore[call-arg]
    app.conf.update(conf)
    return app


def _structure(value: Any, path: tuple[str, ...] = ()) -> Any:
    """The message with ids blanked out, keeping key order and value types."""
    if isinstance(value, dict):
        return [(k, _structure(v, (*path, k))) for k, v in value.items()]
    if isinstance(value, list):
        return [_structure(v, path) for v in value]
    if path[-2:] in _ID_FIELDS:
        return ("<id>", type(value).__name__)
    return value


def _pop_all(client: redis.Redis, key: str) -> list[bytes]:
    pipe = client.pipeline()
    pipe.lrange(key, 0, -1)
    pipe.delete(key)
    items: list[bytes] = pipe.execute()[0]
    return items


def test_a_directly_published_drain_has_the_structure_celery_writes(redis_url: str) -> None:
    # Given the same Celery app publishing once through send_task and once through our message builder
    app = _celery(redis_url)
    client = redis.Redis.from_url(redis_url)
    messages = KombuRedisMessages(app)
    user_id, correlation_id = random.randint(10**9, 9 * 10**9), "tg-4242"
    _pop_all(client, messages.queue_key)

    app.send_task(DRAIN_USER_MAILBOX, args=[user_id], headers={CORRELATION_HEADER: correlation_id})
    (celery_raw,) = _pop_all(client, messages.queue_key)
    ours_raw = messages.drain(user_id, correlation_id)

    # Then both are on the interactive queue's list and equal field for field, ids aside
    assert messages.queue_key == QUEUE_INTERACTIVE
    celery_message, ours = json.loads(celery_raw), json.loads(ours_raw)
    assert _structure(ours) == _structure(celery_message)
    # And the ids are fresh, well-formed and consistent the way Celery makes them
    assert ours["headers"]["id"] == ours["headers"]["root_id"] == ours["properties"]["correlation_id"]
    assert ours["properties"]["delivery_tag"] != ours["headers"]["id"]
    assert json.loads(messages.drain(user_id, correlation_id))["headers"]["id"] != ours["headers"]["id"]
    assert base64.b64decode(ours["body"]) == base64.b64decode(celery_message["body"])


def test_the_body_template_is_what_celerys_json_serializer_writes() -> None:
    for user_id in (1, 7_000_000_001, 2**53):
        expected = json.dumps(
            ([user_id], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None})
        )
        assert DRAIN_BODY.format(args=f"[{user_id}]") == expected


def test_a_correlation_id_that_needs_escaping_survives(redis_url: str) -> None:
    messages = KombuRedisMessages(_celery(redis_url))
    tricky = 'tg-"1"\\\n\u00e9'
    assert json.loads(messages.drain(5, tricky))["headers"][CORRELATION_HEADER] == tricky


def test_priority_lists_are_named_as_kombus_redis_transport_names_them(redis_url: str) -> None:
    app = _celery(redis_url)
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for priority in range(10):
            assert kombu_queue_key("interactive", priority) == channel._q_for_pri("interactive", priority)


def test_the_direct_path_is_chosen_only_for_redis_brokers_configured_as_we_reproduce(redis_url: str) -> None:
    assert direct_redis_supported(_celery(redis_url))
    unix = _celery("unix:///tmp/redis.sock?db=3")  # kombu's redis+socket:// after the settings' conversion
    assert str(unix.conf.broker_url).startswith("redis+socket://") and direct_redis_supported(unix)
    assert not direct_redis_supported(_celery(redis_url, broker_url="amqp://guest@localhost//"))
    assert not direct_redis_supported(_celery(redis_url, task_send_sent_event=True))
    prefixed = {"visibility_timeout": 900, "global_keyprefix": "mb:"}
    assert not direct_redis_supported(_celery(redis_url, broker_transport_options=prefixed))
    assert not direct_redis_supported(_celery(redis_url, task_compression="gzip"))
    prioritized = {"marketbot.interactive.*": {"queue": QUEUE_INTERACTIVE, "priority": 6}}
    assert not direct_redis_supported(_celery(redis_url, task_routes=prioritized))


def test_broker_urls_map_to_redis_py_urls() -> None:
    assert redis_py_url("redis://cache:6379/2") == "redis://cache:6379/2"
    assert redis_py_url("rediss://cache:6380/0") == "rediss://cache:6380/0"
    assert redis_py_url("redis+socket:///run/redis.sock?virtual_host=4") == "unix:///run/redis.sock?db=4"
    assert redis_py_url("redis+socket:///run/redis.sock") == "unix:///run/redis.sock?db=0"
    assert redis_py_url("amqp://guest@rabbit//") is None


# -- a real worker -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture(scope="module")
def worker(database_url: str, redis_url: str, telegram: FakeTelegram) -> Iterator[Process]:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TELEGRAM_BOT_TOKEN": "123456:TEST-token",
        "TELEGRAM_API_BASE_URL": telegram.base_url,
    }
    process = start_worker(env, name="publish", queues=f"{QUEUE_INTERACTIVE},{QUEUE_OUTBOUND}", concurrency=1)
    try:
        yield process
    finally:
        process.stop()


@pytest.mark.slow
def test_a_real_worker_runs_the_drain_the_gateway_published_with_its_correlation_id(
    redis_url: str, telegram: FakeTelegram, worker: Process
) -> None:
    # Given the gateway (its direct Redis publisher) and a real Celery worker on the interactive queue
    user = random.randint(10**9, 9 * 10**9)
    update = text_update(user, "/start", first_name="Ada")

    async def scenario(http: Any, base: str) -> tuple[int, dict[str, Any]]:
        return await post_update(http, base, update)

    # When a user sends /start
    status, body = run_with_gateway(gateway_env(redis_url, telegram.base_url), scenario)

    # Then the worker ran the drain task and the user got the welcome
    assert (status, body["outcome"]) == (200, "enqueued")
    try:
        (reply,) = telegram.wait_for_calls(
            "sendMessage", timeout=60, predicate=lambda c: c.params.get("chat_id") == user
        )
    except AssertionError:
        raise AssertionError(worker.tail(120)) from None
    assert "Welcome to MarketBot, Ada!" in reply.params["text"]
    # And the task carried the update's correlation id in its headers into the worker's log lines
    correlation_id = f"tg-{update['update_id']}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _logged(worker, correlation_id, DRAIN_USER_MAILBOX):
        time.sleep(0.1)
    assert _logged(worker, correlation_id, DRAIN_USER_MAILBOX), worker.tail()


def _logged(worker: Process, correlation_id: str, task_name: str) -> bool:
    """Celery's own "Task … succeeded" line, tagged by task_prerun from the message's correlation header (a
    message without one would be tagged with the task id instead)."""
    for line in list(worker.output):
        if correlation_id in line and task_name in line and "succeeded" in line:
            return True
    return False
