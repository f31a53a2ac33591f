"""Long polling for development (no public URL): the same ingest path as the webhook.

The offset only advances past an update once it was enqueued, so a broker outage delays updates instead of
losing them (Telegram keeps unconfirmed updates for 24 h).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError

from bot_gateway.enqueue import EnqueueFailed
from bot_gateway.ingest import Ingestor

log = structlog.get_logger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
POLL_TIMEOUT_S = 25


async def poll_updates(bot: Bot, ingestor: Ingestor, stop: asyncio.Event) -> None:
    await bot.delete_webhook(drop_pending_updates=False)
    log.info("polling_started")
    offset: int | None = None
    backoff = 0.5
    while not stop.is_set():
        try:
            updates = await bot.get_updates(
                offset=offset, timeout=POLL_TIMEOUT_S, allowed_updates=ALLOWED_UPDATES
            )
        except (TelegramNetworkError, TelegramAPIError, OSError) as exc:
            log.warning("polling_failed", error=type(exc).__name__, retry_in=backoff)
            await _sleep_or_stop(stop, backoff)
            backoff = min(backoff * 2, 30)
            continue
        backoff = 0.5
        for update in updates:
            try:
                await ingestor.ingest(update)
            except EnqueueFailed as exc:
                log.error("polling_enqueue_failed", update_id=update.update_id, error=str(exc))
                await _sleep_or_stop(stop, 1.0)
                break  # refetch from this update on: nothing after it is confirmed
            offset = update.update_id + 1
    log.info("polling_stopped")


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
