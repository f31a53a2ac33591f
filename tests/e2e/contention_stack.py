"""A stack for the contention proof: fake Telegram and Stripe, 2 `marketbot gateway`, 3 `marketbot worker`
(marketbot.local_stack), and the crowd that taps Buy.

Telegram delivers a bot's updates to one webhook URL. With two gateways, something in front of them spreads
the load (in production: a load balancer behind the one public URL). Here the test plays that part, POSTing
each update to the gateways itself, alternating. The updates are still made by the stand-in
(`send_callback`), so it knows every callback query the gateways answer; with no webhook it just keeps them
queued for a getUpdates nobody calls.

The stack uses its own Redis database (broker, mailboxes, dedup keys, the shared Telegram send budget): the
package's `stack` fixture may be alive at the same time, and its workers, pointed at another Telegram
stand-in, must not take this test's tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import redis

from bot_gateway.webhook import SECRET_HEADER
from marketbot.fakes.telegram import FakeTelegram
from marketbot.local_stack import TELEGRAM_GLOBAL_LIMIT, Stack, local_stack, redis_url_with_db

BOT_TOKEN = "123456:Contention-token"
SECRET = "contention-secret"
STRIPE_WEBHOOK_SECRET = "whsec_contention"
GATEWAYS = 2
WORKERS = 3
WORKER_CONCURRENCY = 2
# Telegram opens at most this many simultaneous webhook connections per bot (setWebhook's max_connections,
# default 40; the gateways keep the default), so a balancer in front of the gateways never sees more.
TELEGRAM_WEBHOOK_CONNECTIONS = 40
# A Redis database of its own (see the module docstring); on an external server it is test-owned like
# MARKETBOT_TEST_REDIS_DB and flushed at start.
REDIS_DB = int(os.environ.get("MARKETBOT_CONTENTION_REDIS_DB", "14"))


ContentionStack = Stack


@contextlib.contextmanager
def contention_stack(database_url: str, redis_url: str) -> Iterator[ContentionStack]:
    own_redis = redis_url_with_db(redis_url, REDIS_DB)
    redis.Redis.from_url(own_redis).flushdb()
    with local_stack(
        database_url,
        own_redis,
        bot_token=BOT_TOKEN,
        webhook_secret=SECRET,
        stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
        gateways=GATEWAYS,
        workers=WORKERS,
        worker_concurrency=WORKER_CONCURRENCY,
        # USER_RATE_LIMIT stays at its default: it is per user, and each buyer taps once.
        extra_env={"LOG_HASH_KEY": "contention-log-key"},
    ) as stack:
        yield stack


# -- the crowd ----------------------------------------------------------------------------------------------


async def _send_cards(telegram: FakeTelegram, cards: list[dict[str, Any]]) -> list[int]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as http:

        async def send(card: dict[str, Any]) -> int:
            async with http.post(f"{telegram.base_url}/bot{BOT_TOKEN}/sendPhoto", json=card) as response:
                body = await response.json()
            assert body["ok"], body
            return int(body["result"]["message_id"])

        return await asyncio.gather(*(send(card) for card in cards))


def show_cards(telegram: FakeTelegram, cards: list[dict[str, Any]]) -> list[int]:
    """Put the offer's card in every buyer's chat (the message their Buy button sits on); its message ids.

    This is the state before the test, not what it measures: the bot showed each buyer the offer earlier.
    Sent through the stand-in's Bot API with its global flood limit lifted for the moment, so the setup
    does not take the 33 s that 1,000 sends at 30/s would; the limit is back before anyone taps Buy.
    """
    telegram.global_limit = (1_000_000, 1.0)
    try:
        return asyncio.run(_send_cards(telegram, cards))
    finally:
        telegram.global_limit = TELEGRAM_GLOBAL_LIMIT


@dataclass
class Delivery:
    """How the gateways took the crowd's updates."""

    started: float  # time.monotonic() of the first POST
    finished: float = 0.0  # ... and when the last one was accepted
    outcomes: dict[str, int] = field(default_factory=dict)  # the gateways' `outcome` field, counted
    retries: dict[str, int] = field(default_factory=dict)  # why a POST had to be redelivered, counted


async def _deliver(gateway_urls: list[str], updates: list[dict[str, Any]], give_up_after: float) -> Delivery:
    connections = asyncio.Semaphore(TELEGRAM_WEBHOOK_CONNECTIONS)
    connector = aiohttp.TCPConnector(limit=TELEGRAM_WEBHOOK_CONNECTIONS)
    client_timeout = aiohttp.ClientTimeout(total=30)  # per attempt, once a connection is free
    delivery = Delivery(started=time.monotonic())
    deadline = delivery.started + give_up_after
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as http:

        async def post(index: int, update: dict[str, Any]) -> None:
            url = f"{gateway_urls[index % len(gateway_urls)]}/telegram/webhook"
            while True:
                try:
                    async with (
                        connections,
                        http.post(url, json=update, headers={SECRET_HEADER: SECRET}) as response,
                    ):
                        body = await response.json(content_type=None)
                        if response.status == 200:
                            outcome = str(body.get("outcome"))
                            delivery.outcomes[outcome] = delivery.outcomes.get(outcome, 0) + 1
                            return
                        reason = f"{response.status} {body.get('error')}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    reason = type(exc).__name__
                # Telegram redelivers until it gets a 2xx; so do we, within the deadline.
                delivery.retries[reason] = delivery.retries.get(reason, 0) + 1
                if time.monotonic() > deadline:
                    raise AssertionError(f"update {update['update_id']} was never accepted by {url}")
                await asyncio.sleep(0.5)

        await asyncio.gather(*(post(i, update) for i, update in enumerate(updates)))
    delivery.finished = time.monotonic()
    return delivery


def deliver_to_gateways(
    gateway_urls: list[str], updates: list[dict[str, Any]], *, timeout: float = 240.0
) -> Delivery:
    """POST every update as fast as Telegram would to one balanced URL: TELEGRAM_WEBHOOK_CONNECTIONS at a
    time, alternating between the gateways, each redelivered until it gets a 2xx."""
    return asyncio.run(_deliver(gateway_urls, updates, timeout))
