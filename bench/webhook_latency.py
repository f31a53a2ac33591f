"""Time from webhook POST to the Telegram stand-in receiving the reply, through the whole real stack.

    python -m bench.webhook_latency [--n 100]

Starts embedded PostgreSQL/Redis (unless DATABASE_URL/REDIS_URL are set), migrates, starts the Telegram
stand-in, one `marketbot gateway` and one `marketbot worker` (2 children), then sends N `/start` updates one
at a time, each from a new user, and reports the median and p95. As a same-run baseline it also times a bare
Redis round trip (PING) and a bare HTTP round trip to the gateway's /healthz, so the figure can be read as a
multiple of what the machine does at all right now.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import urllib.request

import redis

from marketbot.embedded import EmbeddedServers
from marketbot.fakes.telegram import FakeTelegram
from marketbot.harness import free_port, start_gateway, start_worker, text_update
from marketbot.settings import normalize_database_url

SECRET = "bench-secret"


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _update(user: int, update_id: int) -> bytes:
    return json.dumps(text_update(user, "/start", update_id=update_id, first_name="Bench")).encode()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    servers = EmbeddedServers(tempfile.mkdtemp(prefix="marketbot-bench-"))
    database_url = os.environ.get("DATABASE_URL") or servers.start_postgres()
    redis_url = os.environ.get("REDIS_URL") or servers.start_redis()
    from db.migrate import upgrade

    upgrade(normalize_database_url(database_url))
    telegram = FakeTelegram(per_chat_limit=(1000, 1.0), global_limit=(10_000, 1.0)).start()
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TELEGRAM_BOT_TOKEN": "123456:BENCH",
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "LOG_LEVEL": "WARNING",
    }
    worker = start_worker(env, name="bench", concurrency=2)
    gateway = start_gateway(env, port=port)
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    try:
        for _ in range(5):  # warm up connections and caches
            user = random.randint(10**9, 9 * 10**9)
            _post(url, _update(user, random.randint(10**8, 10**9)))
            telegram.wait_for_calls("sendMessage", predicate=lambda c, u=user: c.params.get("chat_id") == u)  # type: ignore[misc]
        samples = []
        for _ in range(args.n):
            user = random.randint(10**9, 9 * 10**9)
            started = time.monotonic()
            _post(url, _update(user, random.randint(10**8, 10**9)))
            (call,) = telegram.wait_for_calls(
                "sendMessage",
                timeout=30,
                predicate=lambda c, u=user: c.params.get("chat_id") == u,  # type: ignore[misc]
            )
            samples.append((call.at - started) * 1000)
        client = redis.Redis.from_url(redis_url)
        ping = []
        for _ in range(200):
            t0 = time.perf_counter()
            client.ping()
            ping.append((time.perf_counter() - t0) * 1000)
        health = []
        for _ in range(100):
            t0 = time.perf_counter()
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
            health.append((time.perf_counter() - t0) * 1000)
        median = statistics.median(samples)
        p95 = statistics.quantiles(samples, n=20)[18]
        print(f"webhook POST -> reply received: median {median:.1f} ms, p95 {p95:.1f} ms over {args.n}")
        print(
            f"baseline redis PING: median {statistics.median(ping):.3f} ms; "
            f"gateway /healthz: median {statistics.median(health):.2f} ms"
        )
        print(f"ratio: reply latency = {median / statistics.median(health):.1f}x an HTTP round trip")
        return 0
    finally:
        gateway.stop()
        worker.stop()
        telegram.stop()
        servers.stop()


if __name__ == "__main__":
    raise SystemExit(main())
