"""One path for every update, whether it came by webhook or long polling.

dedupe (update_id) → classify (aiogram routers → command) → per-user rate limit → enqueue → answer the
callback query so the client's spinner stops. The duplicate marker is removed again if enqueueing fails,
so Telegram's redelivery is not mistaken for a duplicate.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import redis.asyncio
import structlog
from aiogram import Bot, Dispatcher
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import Update

from bot_gateway.enqueue import EnqueueFailed, Enqueuer
from bot_gateway.metrics import UPDATES
from bot_gateway.routers import correlation_id_for
from core.commands import SlowDown, UserCommand
from marketbot.logs import correlation

log = structlog.get_logger(__name__)

Outcome = Literal["enqueued", "duplicate", "ignored", "rate_limited"]
DEDUP_TTL_SECONDS = 2 * 24 * 3600  # Telegram keeps redelivering for 24 h

# INCR + EXPIRE on the first hit, atomically (EXPIRE … NX needs Redis 7; the embedded server is 6.2).
_COUNT_IN_WINDOW = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


class Ingestor:
    def __init__(
        self,
        *,
        bot: Bot,
        dispatcher: Dispatcher,
        redis_client: redis.asyncio.Redis,
        enqueuer: Enqueuer,
        rate_limit: int,
        rate_window_s: int,
    ) -> None:
        self.bot = bot
        self.dispatcher = dispatcher
        self.redis = redis_client
        self.enqueuer = enqueuer
        self.rate_limit = rate_limit
        self.rate_window_s = rate_window_s
        self._background: set[asyncio.Task[None]] = set()

    async def ingest(self, update: Update) -> Outcome:
        with correlation(correlation_id_for(update.update_id)):
            outcome = await self._ingest(update)
            UPDATES.labels(outcome).inc()
            log.info("update_received", update_id=update.update_id, outcome=outcome)
            return outcome

    async def _ingest(self, update: Update) -> Outcome:
        dedup_key = f"tg:update:{update.update_id}"
        try:
            first_time = await self.redis.set(dedup_key, 1, nx=True, ex=DEDUP_TTL_SECONDS)
        except Exception as exc:
            UPDATES.labels("failed").inc()
            raise EnqueueFailed(type(exc).__name__) from exc
        if not first_time:
            return "duplicate"
        try:
            result = await self.dispatcher.feed_update(self.bot, update)
            if result is UNHANDLED or result is None:
                return "ignored"
            command: UserCommand = result
            limited = await self._over_rate_limit(command.actor.telegram_user_id)
            if limited == "drop":
                self._answer_callback(command)
                return "rate_limited"
            if limited == "warn":
                command = SlowDown(**command.model_dump(include=set(SlowDown.model_fields) - {"kind"}))
            await self.enqueuer.post_user_command(command)
        except BaseException:
            UPDATES.labels("failed").inc()
            try:
                await self.redis.delete(dedup_key)
            except Exception as exc:
                # The marker stays until it expires: Telegram's redelivery of this update would be taken for
                # a duplicate. Loud, because that loses the update.
                log.error("dedup_marker_not_released", update_id=update.update_id, error=type(exc).__name__)
            raise
        self._answer_callback(command)
        return "rate_limited" if limited == "warn" else "enqueued"

    async def _over_rate_limit(self, user_id: int) -> Literal["ok", "warn", "drop"]:
        """Fixed-window counter per user: cheap (one round trip) and shared by all gateways."""
        count = int(
            await self.redis.eval(_COUNT_IN_WINDOW, 1, f"rl:user:{user_id}", self.rate_window_s)  # type: ignore[misc]
        )
        if count <= self.rate_limit:
            return "ok"
        # Tell the user once per window; drop the rest silently.
        return "warn" if count == self.rate_limit + 1 else "drop"

    def _answer_callback(self, command: UserCommand) -> None:
        """Stop the client's spinner without delaying the webhook response."""
        if command.callback_query_id is None:
            return
        task = asyncio.create_task(self._answer(command.callback_query_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _answer(self, callback_query_id: str) -> None:
        try:
            await self.bot.answer_callback_query(callback_query_id)
        except Exception as exc:  # the spinner times out on its own; never fail the update for this
            log.warning("callback_answer_failed", error=type(exc).__name__)

    async def drain_background(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


__all__ = ["EnqueueFailed", "Ingestor", "Outcome"]
