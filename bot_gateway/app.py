"""The gateway's aiohttp application: routes, startup (webhook registration or polling) and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import redis.asyncio
import structlog
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web
from celery import Celery

from bot_gateway import health, stripe_webhook
from bot_gateway.dispatch import build_dispatcher
from bot_gateway.enqueue import Enqueuer
from bot_gateway.ingest import Ingestor
from bot_gateway.menu import register_menu
from bot_gateway.metrics import webhook_requests
from bot_gateway.polling import ALLOWED_UPDATES, poll_updates
from bot_gateway.publish import (
    CeleryDrainPublisher,
    KombuRedisMessages,
    RedisDrainPublisher,
    direct_redis_supported,
    redis_py_url,
)
from bot_gateway.webhook import IN_FLIGHT_KEY, INGESTOR_KEY, SECRET_KEY, InFlightLimit, telegram_webhook
from marketbot.settings import Settings
from tasks.names import ALL_QUEUES

log = structlog.get_logger(__name__)
_stdlib_log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
MAX_BODY_BYTES = 1024 * 1024  # Telegram updates are small; anything bigger is not from Telegram


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The gateway's event loop: uvloop's where it is installed (a dependency wherever it ships wheels), else
    asyncio's. The loop's own work per update (socket reads and writes, callbacks, timers) is done in C:
    ~10% less gateway CPU per update than asyncio's loop (paired runs of bench/gateway_ingest.py's load)."""
    try:
        import uvloop
    except ImportError:  # Windows: uvloop does not support it
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def make_bot(settings: Settings) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base_url))
    return Bot(settings.require("telegram_bot_token"), session=session)


@web.middleware
async def _observe(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if request.path in (WEBHOOK_PATH, stripe_webhook.STRIPE_WEBHOOK_PATH):
            webhook_requests(request.path, status).inc()
            # structlog renders a line before the stdlib level drops it (~40 µs): skip it unless it's wanted.
            if _stdlib_log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "http_request",
                    path=request.path,
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 2),
                )


def create_app(
    settings: Settings, *, celery_app: Celery | None = None, polling: bool | None = None
) -> web.Application:
    """Build the gateway. `polling` defaults to: poll when no PUBLIC_BASE_URL is configured."""
    if celery_app is None:
        from tasks.app import create_app as create_celery_app

        celery_app = create_celery_app(settings)
    use_polling = (settings.public_base_url is None) if polling is None else polling
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_observe])
    app[SECRET_KEY] = settings.telegram_webhook_secret
    app[IN_FLIGHT_KEY] = InFlightLimit(MAX_UPDATES_IN_FLIGHT, ADMISSION_WAIT_SECONDS)
    app.router.add_post(WEBHOOK_PATH, telegram_webhook)
    stripe_webhook.install(app, settings, celery_app)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        redis_client = _redis_client(settings.require("redis_url"))
        bot = make_bot(settings)
        dispatcher = build_dispatcher()
        broker = _redis_broker(settings, redis_client)
        enqueuer = build_enqueuer(settings, redis_client, broker, celery_app)
        ingestor = Ingestor(bot=bot, dispatcher=dispatcher, enqueuer=enqueuer)
        app[INGESTOR_KEY] = ingestor
        checks: dict[str, health.Check] = {
            "redis": health.redis_check(redis_client),
            "broker": health.broker_check(celery_app.conf.broker_url),
        }
        if settings.database_url:
            checks["database"] = health.database_check(settings.sqlalchemy_url)
        app[health.CHECKS_KEY] = checks
        app[health.WORKER_METRICS_KEY] = health.WorkerMetrics(redis_client, broker, ALL_QUEUES)
        stop = asyncio.Event()
        poller: asyncio.Task[None] | None = None
        if use_polling:
            poller = asyncio.create_task(poll_updates(bot, ingestor, stop))
        elif settings.public_base_url:
            await _register_webhook(bot, settings)
        # In the background: the menu is cosmetic and must not delay serving updates.
        menu = asyncio.create_task(register_menu(bot))
        log.info("gateway_started", mode="polling" if use_polling else "webhook")
        try:
            yield
        finally:
            stop.set()
            menu.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await menu
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await poller
            await ingestor.drain_background()
            await bot.session.close()
            if broker is not None and broker is not redis_client:
                await broker.aclose()
            await redis_client.aclose()
            log.info("gateway_stopped")

    app.cleanup_ctx.append(lifecycle)
    return app


# Webhook updates processed at once; more wait up to ADMISSION_WAIT_SECONDS for a place, then get a 503 (and
# Telegram redelivers). Telegram itself opens at most 100 webhook connections, so in normal operation nobody
# waits; the bound is for overload, where queuing for seconds would only time out the sender and hold
# every Redis connection. An update holds at most one Redis connection at a time.
MAX_UPDATES_IN_FLIGHT = 100
ADMISSION_WAIT_SECONDS = 2.0
# Connections the gateway keeps to Redis: one per update in flight, plus headroom for the Stripe webhook,
# health checks, /metrics and polling. A request beyond that waits for a free connection (up to the timeout)
# instead of failing: redis-py's plain pool raises at its limit, which turned bursts into 503s.
REDIS_POOL_SIZE = MAX_UPDATES_IN_FLIGHT + 20
REDIS_POOL_WAIT_SECONDS = 2.0


def _redis_client(url: str) -> redis.asyncio.Redis:
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=REDIS_POOL_SIZE,
        timeout=REDIS_POOL_WAIT_SECONDS,
        socket_connect_timeout=2,
        socket_timeout=5,
    )
    return redis.asyncio.Redis(connection_pool=pool)


def _redis_broker(settings: Settings, redis_client: redis.asyncio.Redis) -> redis.asyncio.Redis | None:
    """A client for the broker's Redis (queue depths, publishing); None for a broker that isn't Redis."""
    raw = settings.celery_broker_url_raw
    if raw is None:
        return redis_client  # the broker is REDIS_URL
    url = redis_py_url(raw)
    return _redis_client(url) if url is not None else None


def build_enqueuer(
    settings: Settings,
    redis_client: redis.asyncio.Redis,
    broker: redis.asyncio.Redis | None,
    celery_app: Celery,
) -> Enqueuer:
    """The publish path by broker: this Redis → the drain message goes into the mailbox script (one round
    trip); another Redis → one LPUSH on its client; anything else (AMQP) → celery_app.send_task."""
    enqueuer = functools.partial(
        Enqueuer, redis_client, rate_limit=settings.user_rate_limit, rate_window_s=settings.user_rate_window_s
    )
    if broker is None or not direct_redis_supported(celery_app):
        return enqueuer(publisher=CeleryDrainPublisher(celery_app))
    messages = KombuRedisMessages(celery_app)
    if broker is redis_client:
        return enqueuer(messages=messages)
    return enqueuer(publisher=RedisDrainPublisher(broker, messages))


async def _register_webhook(bot: Bot, settings: Settings) -> None:
    secret = settings.require("telegram_webhook_secret")
    url = f"{settings.public_base_url}{WEBHOOK_PATH}"
    # Retry: at container start Telegram (or the network) may briefly be unreachable; the gateway still
    # serves whatever a previously registered webhook delivers meanwhile.
    for attempt in range(5):
        try:
            await bot.set_webhook(
                url, secret_token=secret, allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False
            )
            log.info("webhook_registered", url=url)
            return
        except Exception as exc:
            log.warning("webhook_registration_failed", attempt=attempt + 1, error=type(exc).__name__)
            await asyncio.sleep(min(2**attempt, 10))
    log.error("webhook_not_registered", url=url)
