"""GET /healthz (the process is up), GET /readyz (broker, Redis and database reachable), GET /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import redis.asyncio
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

Check = Callable[[], Awaitable[None]]
CHECKS_KEY: web.AppKey[dict[str, Check]] = web.AppKey("readiness_checks", dict)
CHECK_TIMEOUT_S = 2.0


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks = request.app[CHECKS_KEY]
    results: dict[str, str] = {}

    async def run(name: str, check: Check) -> None:
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
            results[name] = "ok"
        except Exception as exc:
            results[name] = f"unavailable: {type(exc).__name__}"

    await asyncio.gather(*(run(n, c) for n, c in checks.items()))
    ready = all(v == "ok" for v in results.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": results}, status=200 if ready else 503
    )


async def metrics(_request: web.Request) -> web.Response:
    body = generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def redis_check(client: redis.asyncio.Redis) -> Check:
    async def check() -> None:
        await client.ping()  # type: ignore[misc]

    return check


def broker_check(broker_url: str) -> Check:
    """A real broker connection (the broker may be a different server than REDIS_URL)."""
    from kombu import Connection

    def connect() -> None:
        with Connection(broker_url, connect_timeout=CHECK_TIMEOUT_S) as conn:
            conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_S)

    async def check() -> None:
        await asyncio.to_thread(connect)

    return check


def database_check(database_url: str) -> Check:
    """Reachability only (SELECT 1 over a fresh connection); the gateway never uses the database."""
    import psycopg2

    dsn = database_url.replace("postgresql+psycopg2://", "postgresql://")

    def connect() -> None:
        conn = psycopg2.connect(dsn, connect_timeout=int(CHECK_TIMEOUT_S))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        finally:
            conn.close()

    async def check() -> None:
        await asyncio.to_thread(connect)

    return check
