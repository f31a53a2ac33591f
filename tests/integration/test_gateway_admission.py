"""Overload: updates beyond the gateway's in-flight bound are refused fast with a 503 (Telegram redelivers),
instead of queuing for seconds; a refused update is accepted when it comes again."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot_gateway.app import create_app
from bot_gateway.webhook import IN_FLIGHT_KEY, InFlightLimit, Overloaded
from marketbot.fakes.telegram import FakeTelegram
from marketbot.harness import text_update
from marketbot.settings import load_settings
from tasks.app import create_app as create_celery_app
from tests.support.gateway import gateway_env, post_update


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


def test_an_update_finding_no_place_gets_a_fast_503_and_its_redelivery_is_accepted(
    redis_url: str, telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a gateway whose only place for an update is taken (by a request stuck elsewhere)
    for key, value in gateway_env(redis_url, telegram.base_url).items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    app = create_app(settings, celery_app=create_celery_app(settings), polling=False)
    app[IN_FLIGHT_KEY] = InFlightLimit(1, max_wait_s=0.2)
    user = random.randint(10**9, 9 * 10**9)
    update = text_update(user, "/start", first_name="Ana")

    async def scenario() -> tuple[int, float, int, str]:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        try:
            async with aiohttp.ClientSession() as http:
                async with app[IN_FLIGHT_KEY].place():
                    # When Telegram delivers an update
                    started = time.monotonic()
                    refused, _ = await post_update(http, base, update)
                    waited = time.monotonic() - started
                # And delivers it again once the gateway has room
                status, body = await post_update(http, base, update)
                return refused, waited, status, body["outcome"]
        finally:
            await server.close()

    refused, waited, status, outcome = asyncio.run(scenario())

    # Then the first delivery is refused with a 503 after the short admission wait, not seconds later
    assert refused == 503 and waited < 2.0
    # And the redelivery is processed, not taken for a duplicate
    assert (status, outcome) == (200, "enqueued")


def test_a_waiting_update_gets_the_first_place_that_frees_up() -> None:
    async def scenario() -> list[str]:
        limit = InFlightLimit(1, max_wait_s=5)
        events: list[str] = []
        release = asyncio.Event()

        async def first() -> None:
            async with limit.place():
                events.append("first in")
                await release.wait()
            events.append("first out")

        async def second() -> None:
            async with limit.place():
                events.append("second in")

        tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
        await asyncio.sleep(0.05)
        events.append("released")
        release.set()
        await asyncio.gather(*tasks)
        return events

    assert asyncio.run(scenario()) == ["first in", "released", "first out", "second in"]


def test_a_place_is_given_back_when_the_update_fails() -> None:
    async def scenario() -> Any:
        limit = InFlightLimit(1, max_wait_s=0.05)
        with pytest.raises(RuntimeError):
            async with limit.place():
                raise RuntimeError("classification bug")
        async with limit.place():
            with pytest.raises(Overloaded):
                async with limit.place():
                    pass
        async with limit.place():
            return "free again"

    assert asyncio.run(scenario()) == "free again"
