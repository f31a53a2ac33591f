"""The one enqueue helper: store a user's command in their mailbox, then publish the drain task.

Both steps must succeed before the gateway answers 2xx; if either fails, EnqueueFailed makes the webhook
answer 5xx so Telegram redelivers (storing is idempotent per update_id, so a retry after a half-done
attempt is harmless).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio
from celery import Celery

from bot_gateway.metrics import ENQUEUE_SECONDS
from core.commands import UserCommand, dump_command
from tasks import mailbox
from tasks.app import CORRELATION_HEADER
from tasks.names import DRAIN_USER_MAILBOX

# Fail fast when the broker is away: Telegram will redeliver, and a gateway stuck in kombu's default
# retries (seconds per update) would back up every other user's updates behind it.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


class EnqueueFailed(Exception):
    """The update could not be handed to the workers; the caller must not acknowledge it."""


class Enqueuer:
    def __init__(self, redis_client: redis.asyncio.Redis, celery_app: Celery) -> None:
        self.redis = redis_client
        self.celery = celery_app

    async def post_user_command(self, command: UserCommand) -> None:
        started = time.perf_counter()
        user_id = command.actor.telegram_user_id
        try:
            await mailbox.post(self.redis, user_id, command.update_id, dump_command(command))
            await asyncio.to_thread(self._publish_drain, user_id, command.correlation_id)
        except Exception as exc:
            raise EnqueueFailed(type(exc).__name__) from exc
        finally:
            ENQUEUE_SECONDS.observe(time.perf_counter() - started)

    def _publish_drain(self, user_id: int, correlation_id: str) -> Any:
        return self.celery.send_task(
            DRAIN_USER_MAILBOX,
            args=[user_id],
            headers={CORRELATION_HEADER: correlation_id},
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )
