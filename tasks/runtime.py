"""Per-process resources for workers: settings, database, Redis, the Bot API sender.

Created lazily and keyed by pid, because Celery's prefork pool forks children after import: connections
(database pools, Redis sockets, aiohttp sessions) must never be shared across a fork.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

import redis

from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from marketbot.logs import hash_id
from marketbot.metrics_store import MetricsWriter
from marketbot.settings import Settings, load_settings
from tasks.adapters.ratelimit import TelegramRateLimiter
from tasks.adapters.stripe_payments import StripePayments
from tasks.mailbox import Mailbox

if TYPE_CHECKING:
    from tasks.adapters.telegram import BotApiSender

T = TypeVar("T")
_per_process: dict[tuple[int, str], Any] = {}
# Threaded workers (outbound) ask from many threads at once: one engine or sender per process, not per race.
# Re-entrant: building the mailbox asks for the Redis client.
_building = threading.RLock()


def _once_per_process(name: str, build: Callable[[], T]) -> T:
    key = (os.getpid(), name)
    if key not in _per_process:
        with _building:
            if key not in _per_process:
                _per_process[key] = build()
    return _per_process[key]  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()


def uow_factory() -> Callable[[], SqlAlchemyUnitOfWork]:
    factory = _once_per_process(
        "session_factory", lambda: make_session_factory(make_engine(settings().sqlalchemy_url))
    )
    return lambda: SqlAlchemyUnitOfWork(factory)


def redis_client() -> redis.Redis:
    return _once_per_process(
        "redis", lambda: redis.Redis.from_url(settings().require("redis_url"), health_check_interval=30)
    )


def mailbox() -> Mailbox:
    return _once_per_process("mailbox", lambda: Mailbox(redis_client()))


def sender() -> BotApiSender:
    def build() -> BotApiSender:
        # aiogram (~1 s to import) only in processes that send: `marketbot worker` loads it at start for
        # workers of the outbound queue (marketbot/cli.py), so their first send doesn't wait for it.
        from tasks.adapters.telegram import BotApiSender

        s = settings()
        token = s.require("telegram_bot_token")
        # The limiter key is the bot id (the token's public half), never the secret part.
        limiter = TelegramRateLimiter(redis_client(), bot_key=token.split(":", 1)[0])
        # A send task never sleeps on one chat's next slot: it hands the chat back and serves other chats.
        return BotApiSender(
            token=token,
            base_url=s.telegram_api_base_url,
            limiter=limiter,
            hand_back_chat_waits=True,
            hash_id=hash_id,
        )

    return _once_per_process("sender", build)


def payments() -> StripePayments:
    """The Stripe adapter for this process (STRIPE_SECRET_KEY, STRIPE_API_BASE_URL)."""

    def build() -> StripePayments:
        s = settings()
        return StripePayments(secret_key=s.require("stripe_secret_key"), api_base_url=s.stripe_api_base_url)

    return _once_per_process("payments", build)


def metrics() -> MetricsWriter:
    return _once_per_process("metrics", lambda: MetricsWriter(redis_client()))
