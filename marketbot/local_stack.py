"""A whole MarketBot of real processes on this machine: Telegram (and Stripe) stand-ins, gateways, workers.

Used by the end-to-end contention test and the benchmarks, which drive it the way Telegram and Stripe would.
The gateways start in webhook mode (PUBLIC_BASE_URL set, so they never long-poll and fight over getUpdates);
once they have registered, the webhook is deleted at the stand-in and the caller POSTs updates to the gateways
itself, with the secret-token header exactly as Telegram sends it. (Telegram delivers to one URL; with
several gateways, the caller plays the load balancer that would sit in front of them.)
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

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
from tasks.names import ALL_QUEUES, QUEUE_OUTBOUND

# Telegram's published limit for one bot, which the stand-in enforces (and our senders respect via Redis).
TELEGRAM_GLOBAL_LIMIT = (30, 1.0)


@dataclass
class Stack:
    telegram: FakeTelegram
    stripe: FakeStripe | None
    gateways: list[Process]
    gateway_urls: list[str]
    workers: list[Process]
    env: dict[str, str]
    bot_token: str

    @property
    def webhook_url(self) -> str:
        return f"{self.gateway_urls[0]}/telegram/webhook"

    def bot_api(self, method: str, params: dict[str, Any]) -> Any:
        return bot_api(self.telegram, self.bot_token, method, params)

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


def bot_api(telegram: FakeTelegram, bot_token: str, method: str, params: dict[str, Any]) -> Any:
    """Call the stand-in's Bot API as a client would; the result, or AssertionError if it said not ok."""
    request = urllib.request.Request(  # noqa: S310 (the stand-in's http URL)
        f"{telegram.base_url}/bot{bot_token}/{method}",
        data=json.dumps(params).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (the stand-in's http URL)
        body = json.loads(response.read())
    if not body.get("ok"):
        raise AssertionError(f"{method}: {body}")
    return body["result"]


@contextlib.contextmanager
def local_stack(
    database_url: str,
    redis_url: str,
    *,
    bot_token: str,
    webhook_secret: str,
    stripe_webhook_secret: str | None = None,
    gateways: int = 1,
    workers: int = 1,
    worker_concurrency: int = 2,
    worker_queues: str | None = None,
    outbound_threads: int = 0,
    telegram_limits: bool = True,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Start everything at once (each process spends seconds importing), wait until all are ready, yield.

    `stripe_webhook_secret` adds the Stripe stand-in, delivering to the first gateway's /stripe/webhook.
    `outbound_threads` lays the workers out as docker-compose.yml does: the `workers` take every queue but
    outbound, and one more worker with that many threads sends (0: every worker takes every queue).
    `telegram_limits` keeps the stand-in's flood limits (30/s per bot, ~1/s per chat); without them it
    accepts anything, for benchmarks that measure our side alone."""
    if telegram_limits:
        telegram = FakeTelegram(global_limit=TELEGRAM_GLOBAL_LIMIT).start()
    else:
        telegram = FakeTelegram(per_chat_limit=(10_000, 1.0), global_limit=(100_000, 1.0)).start()
    ports = [free_port() for _ in range(gateways)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    stripe = (
        FakeStripe(webhook_url=f"{urls[0]}/stripe/webhook", webhook_secret=stripe_webhook_secret).start()
        if stripe_webhook_secret and gateways
        else None
    )
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TELEGRAM_BOT_TOKEN": bot_token,
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "TELEGRAM_WEBHOOK_SECRET": webhook_secret,
        "TELEGRAM_BOT_USERNAME": telegram.bot_username,
        **(extra_env or {}),
    }
    if stripe is not None:
        env |= {
            "STRIPE_SECRET_KEY": "sk_test_local_stack",
            "STRIPE_API_BASE_URL": stripe.base_url,
            "STRIPE_WEBHOOK_SECRET": str(stripe_webhook_secret),
        }
    started_workers: list[Process] = []
    started_gateways: list[Process] = []
    try:
        queues = worker_queues
        if outbound_threads and queues is None:
            queues = ",".join(q for q in ALL_QUEUES if q != QUEUE_OUTBOUND)
        started_workers = [
            start_worker(env, name=f"w{i}", concurrency=worker_concurrency, queues=queues, wait=False)
            for i in range(workers)
        ]
        if outbound_threads:
            started_workers.append(
                start_worker(
                    env,
                    name="w-out",
                    concurrency=outbound_threads,
                    queues=QUEUE_OUTBOUND,
                    pool="threads",
                    wait=False,
                )
            )
        started_gateways = [
            start_gateway({**env, "PUBLIC_BASE_URL": url}, port=port, name=f"gateway{i}", wait=False)
            for i, (port, url) in enumerate(zip(ports, urls, strict=True))
        ]
        for worker in started_workers:
            wait_worker_ready(worker)
        for gateway, port in zip(started_gateways, ports, strict=True):
            wait_gateway_healthy(gateway, port)
        if gateways:
            # Each registered its webhook while starting; from now on the caller delivers (module docstring).
            telegram.wait_for_calls("setWebhook", count=gateways, timeout=30)
            bot_api(telegram, bot_token, "deleteWebhook", {})
        yield Stack(telegram, stripe, started_gateways, urls, started_workers, env, bot_token)
    finally:
        # In parallel: each waits for its process's graceful shutdown (Celery finishes running tasks).
        with ThreadPoolExecutor(max_workers=max(1, len(started_gateways) + len(started_workers))) as pool:
            list(pool.map(Process.stop, [*started_gateways, *started_workers]))
        telegram.stop()
        if stripe is not None:
            stripe.stop()
