"""The whole stack on real processes: fake Telegram ⇄ `marketbot gateway` → Redis → 2× `marketbot worker`,
with the Stripe stand-in for payments.

The gateway registers its webhook with the Telegram stand-in at start (PUBLIC_BASE_URL), exactly as in
production, and the stand-in delivers user messages to it with the secret header. The Stripe stand-in
serves the workers' API calls and delivers its signed webhooks to the gateway's /stripe/webhook.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

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

BOT_TOKEN = "123456:E2E-token"
ADMIN_ID = 7_770_000_001
SECRET = "e2e-secret"
STRIPE_WEBHOOK_SECRET = "whsec_e2e"


@dataclass
class Stack:
    telegram: FakeTelegram
    gateway: Process
    workers: list[Process]
    gateway_url: str
    env: dict[str, str]
    stripe: FakeStripe


# Package scope: the workers must be gone before other packages' tests, which inspect queued tasks.
@pytest.fixture(scope="package")
def stack(database_url: str, redis_url: str) -> Iterator[Stack]:
    telegram = FakeTelegram().start()
    port = free_port()
    stripe = FakeStripe(
        webhook_url=f"http://127.0.0.1:{port}/stripe/webhook", webhook_secret=STRIPE_WEBHOOK_SECRET
    ).start()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "LOG_HASH_KEY": "e2e-log-key",
        # The burst test sends 40 updates at once from one user; the flood limit has its own test.
        "USER_RATE_LIMIT": "1000",
        "ADMIN_TELEGRAM_IDS": str(ADMIN_ID),
        "TELEGRAM_BOT_USERNAME": telegram.bot_username,
        "STRIPE_SECRET_KEY": "sk_test_e2e",
        "STRIPE_API_BASE_URL": stripe.base_url,
        "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
    }
    workers: list[Process] = []
    gateway = None
    try:
        # Two worker processes with two children each: four places a user's updates could race.
        # Started together: each spends seconds importing aiogram and Celery.
        workers = [start_worker(env, name=f"w{i}", wait=False) for i in range(2)]
        gateway = start_gateway(env, port=port, wait=False)
        for worker in workers:
            wait_worker_ready(worker)
        wait_gateway_healthy(gateway, port)
        telegram.wait_for_calls("setWebhook")
        yield Stack(telegram, gateway, workers, f"http://127.0.0.1:{port}", env, stripe)
    finally:
        if gateway is not None:
            gateway.stop()
        for worker in workers:
            worker.stop()
        telegram.stop()
        stripe.stop()
