"""GET /healthz (the process is up), GET /readyz (broker, Redis and database reachable), GET /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import redis.asyncio
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from marketbot.metrics_store import COUNTERS_KEY, GAUGES_KEY, render, series

log = structlog.get_logger(__name__)

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


# Kombu's Redis transport keeps each queue as a list, plus one list per extra priority step.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


class WorkerMetrics:
    """What workers stored in Redis (marketbot.metrics_store) and the queue depths, read at scrape time."""

    def __init__(
        self, store: redis.asyncio.Redis, broker: redis.asyncio.Redis | None, queues: tuple[str, ...]
    ) -> None:
        self.store = store
        self.broker = broker  # None when the broker is not Redis: depths then come from the broker's tools
        self.queues = queues

    async def render(self) -> str:
        counters = await self.store.hgetall(COUNTERS_KEY)  # type: ignore[misc]
        gauges: dict[bytes | str, bytes | str] = dict(await self.store.hgetall(GAUGES_KEY))  # type: ignore[misc]
        if self.broker is not None:
            pipe = self.broker.pipeline(transaction=False)
            for queue in self.queues:
                for suffix in _PRIORITY_SUFFIXES:
                    pipe.llen(queue + suffix)
            pipe.hlen("unacked")
            lengths = await pipe.execute()
            per_queue = len(_PRIORITY_SUFFIXES)
            for index, queue in enumerate(self.queues):
                depth = sum(lengths[index * per_queue : (index + 1) * per_queue])
                gauges[series("marketbot_queue_messages", {"queue": queue})] = str(depth)
            gauges[series("marketbot_queue_unacked")] = str(lengths[-1])
        return render(counters, gauges)


WORKER_METRICS_KEY: web.AppKey[WorkerMetrics] = web.AppKey("worker_metrics", WorkerMetrics)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest()
    source = request.app.get(WORKER_METRICS_KEY)
    if source is not None:
        try:
            body += (await asyncio.wait_for(source.render(), CHECK_TIMEOUT_S)).encode()
        except Exception as exc:  # the gateway's own metrics are still worth serving
            log.warning("worker_metrics_unavailable", error=type(exc).__name__)
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
