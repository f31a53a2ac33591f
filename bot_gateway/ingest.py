"""One path for every update, whether it came by webhook or long polling.

classify (aiogram routers → command) → one Redis round trip that dedupes (update_id), counts the user's
rate and stores the command in their mailbox and publishes its drain (bot_gateway.enqueue) → answer the
callback query so the client's spinner stops. Classifying first touches nothing, so a duplicate costs one
round trip too. The duplicate marker is removed again if enqueueing fails, so Telegram's redelivery is not
mistaken for a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

import structlog
from aiogram import Bot, Dispatcher
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import Update

from bot_gateway.enqueue import EnqueueFailed, Enqueuer
from bot_gateway.metrics import updates
from bot_gateway.routers import correlation_id_for
from core.commands import SlowDown, UserCommand
from marketbot.logs import correlation

log = structlog.get_logger(__name__)
_stdlib_log = logging.getLogger(__name__)

Outcome = Literal["enqueued", "duplicate", "ignored", "rate_limited"]
_SLOW_DOWN_FIELDS = set(SlowDown.model_fields) - {"kind"}


class Ingestor:
    def __init__(self, *, bot: Bot, dispatcher: Dispatcher, enqueuer: Enqueuer) -> None:
        self.bot = bot
        self.dispatcher = dispatcher
        self.enqueuer = enqueuer
        self._background: set[asyncio.Task[None]] = set()

    async def ingest(self, update: Update) -> Outcome:
        with correlation(correlation_id_for(update.update_id)):
            outcome = await self._ingest(update)
            updates(outcome).inc()
            # structlog renders the line before the stdlib level would drop it: only build it when it's kept.
            if _stdlib_log.isEnabledFor(logging.INFO):
                log.info("update_received", update_id=update.update_id, outcome=outcome)
            return outcome

    async def _ingest(self, update: Update) -> Outcome:
        try:
            result = await self.dispatcher.feed_update(self.bot, update)
        except BaseException:
            updates("failed").inc()
            raise
        if result is UNHANDLED or result is None:
            # Still marked, so a redelivery of an ignored update is reported as a duplicate, as before.
            try:
                first_time = await self.enqueuer.claim(update.update_id)
            except EnqueueFailed:
                updates("failed").inc()
                raise
            return "ignored" if first_time else "duplicate"
        command: UserCommand = result
        try:
            admission = await self.enqueuer.admit_and_post(command)
            if admission == "duplicate":
                return "duplicate"
            if admission == "warn":  # tell the user once per window; the rest of the window is dropped
                await self.enqueuer.post(SlowDown(**command.model_dump(include=_SLOW_DOWN_FIELDS)))
        except BaseException:
            updates("failed").inc()
            try:
                await self.enqueuer.release(update.update_id)
            except Exception as exc:
                # The marker stays until it expires: Telegram's redelivery of this update would be taken for
                # a duplicate. Loud, because that loses the update.
                log.error("dedup_marker_not_released", update_id=update.update_id, error=type(exc).__name__)
            raise
        self._answer_callback(command)
        return "enqueued" if admission == "enqueued" else "rate_limited"

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
