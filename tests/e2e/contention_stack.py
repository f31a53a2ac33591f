"""A stack for the contention proof: fake Telegram and Stripe, 2 `marketbot gateway`, 3 `marketbot worker`.

Telegram delivers a bot's updates to one webhook URL. With two gateways, something in front of them spreads
the load (in production: a load balancer behind the one public URL). Here the test plays that part: the
gateways start in webhook mode (PUBLIC_BASE_URL set, so they never long-poll and fight over getUpdates),
then the test deletes the webhook at the Telegram stand-in and POSTs each update to the gateways itself,
alternating, with the secret-token header exactly as Telegram sends it. The updates are still made by the
stand-in (`send_callback`), so it knows every callback query the gateways answer; with no webhook it just
keeps them queued for a getUpdates nobody calls.

The stack uses its own Redis database (broker, mailboxes, dedup keys, the shared Telegram send budget): the
package's `stack` fixture may be alive at the same time, and its workers, pointed at another Telegram
stand-in, must not take this test's tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import redis

from bot_gateway.webhook import SECRET_HEADER
from marketbot.fakes.stripe import FakeStripe
from marketbot.fakes.telegram import FakeTelegram
from marketbot.harness import (
    Process,
    free_port,
    start_gateway,
    start_worker,
    wait_gateway_healthy,
    wait_worker_ready,
)

BOT_TOKEN = "123456:Contention-token"
SECRET = "contention-secret"
STRIPE_WEBHOOK_SECRET = "whsec_contention"
GATEWAYS = 2
WORKERS = 3
WORKER_CONCURRENCY = 2
# Telegram's published limit, which the stand-in enforces (and our senders respect through Redis).
TELEGRAM_GLOBAL_LIMIT = (30, 1.0)
# Telegram opens at most this many simultaneous webhook connections per bot (setWebhook's max_connections,
# default 40; the gateways keep the default), so a balancer in front of the gateways never sees more.
TELEGRAM_WEBHOOK_CONNECTIONS = 40
# A Redis database of its own (see the module docstring); on an external server it is test-owned like
# MARKETBOT_TEST_REDIS_DB and flushed at start.
REDIS_DB = int(os.environ.get("MARKETBOT_CONTENTION_REDIS_DB", "14"))


@dataclass
class ContentionStack:
    telegram: FakeTelegram
    stripe: FakeStripe
    gateways: list[Process]
    gateway_urls: list[str]
    workers: list[Process]
    env: dict[str, str]

    def tails(self) -> str:
        """The last lines of every process, for a failure message."""
        return "\n".join(f"--- {p.name}\n{p.tail(30)}" for p in [*self.gateways, *self.workers])


def redis_url_with_db(url: str, db: int) -> str:
    """The same Redis server, another database (unix://path?db=N or redis://host:port/N)."""
    if url.startswith("unix://"):
        return url.split("?", 1)[0] + f"?db={db}"
    head, _, query = url.partition("?")
    scheme, _, rest = head.partition("://")
    server = rest.split("/", 1)[0]
    return f"{scheme}://{server}/{db}" + (f"?{query}" if query else "")


@contextlib.contextmanager
def contention_stack(database_url: str, redis_url: str) -> Iterator[ContentionStack]:
    telegram = FakeTelegram(global_limit=TELEGRAM_GLOBAL_LIMIT).start()
    ports = [free_port() for _ in range(GATEWAYS)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    # Stripe delivers to one endpoint too: gateway 1's /stripe/webhook.
    stripe = FakeStripe(webhook_url=f"{urls[0]}/stripe/webhook", webhook_secret=STRIPE_WEBHOOK_SECRET).start()
    own_redis = redis_url_with_db(redis_url, REDIS_DB)
    redis.Redis.from_url(own_redis).flushdb()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": own_redis,
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "LOG_HASH_KEY": "contention-log-key",
        "TELEGRAM_BOT_USERNAME": telegram.bot_username,
        "STRIPE_SECRET_KEY": "sk_test_contention",
        "STRIPE_API_BASE_URL": stripe.base_url,
        "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
        # USER_RATE_LIMIT stays at its default: it is per user, and each buyer taps once.
    }
    workers: list[Process] = []
    gateways: list[Process] = []
    try:
        # All started at once: each spends seconds importing aiogram and Celery.
        workers = [
            start_worker(env, name=f"w{i}", concurrency=WORKER_CONCURRENCY, wait=False)
            for i in range(WORKERS)
        ]
        gateways = [
            start_gateway({**env, "PUBLIC_BASE_URL": url}, port=port, name=f"gateway{i}", wait=False)
            for i, (port, url) in enumerate(zip(ports, urls, strict=True))
        ]
        for worker in workers:
            wait_worker_ready(worker, timeout=240)
        for gateway, port in zip(gateways, ports, strict=True):
            wait_gateway_healthy(gateway, port, timeout=240)
        # Both registered their webhook while starting; from now on the test delivers (module docstring).
        telegram.wait_for_calls("setWebhook", count=GATEWAYS, timeout=30)
        _bot_api(telegram, "deleteWebhook", {})
        yield ContentionStack(telegram, stripe, gateways, urls, workers, env)
    finally:
        # In parallel: each waits for its process's graceful shutdown (Celery finishes running tasks).
        with ThreadPoolExecutor(max_workers=GATEWAYS + WORKERS) as pool:
            list(pool.map(Process.stop, [*gateways, *workers]))
        telegram.stop()
        stripe.stop()


def _bot_api(telegram: FakeTelegram, method: str, params: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{telegram.base_url}/bot{BOT_TOKEN}/{method}",
        data=json.dumps(params).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    assert body["ok"], body
    return body["result"]


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
