"""POST /telegram/webhook: secret check, parse, ingest; 2xx only once the update is safely enqueued.

We do not use aiogram's SimpleRequestHandler: by default it answers 200 before handling, so an enqueue
failure would lose the update. Here a failure answers 503 and Telegram redelivers. So does overload: at most
`InFlightLimit.limit` updates are processed at once, and one that cannot start within a short wait is refused
at once instead of queuing for seconds behind the others.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import Any, get_args

import structlog
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from bot_gateway.enqueue import EnqueueFailed
from bot_gateway.ingest import Ingestor, Outcome
from bot_gateway.metrics import updates

log = structlog.get_logger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret
INGESTOR_KEY: web.AppKey[Ingestor] = web.AppKey("ingestor", Ingestor)
SECRET_KEY: web.AppKey[str | None] = web.AppKey("webhook_secret", str)


class Overloaded(Exception):
    """No place for this update within the admission wait."""


class InFlightLimit:
    """At most `limit` updates inside the gateway at once; the next ones wait up to `max_wait_s` in arrival
    order, then are refused. Refusing costs almost nothing, so a flood cannot starve the updates in flight.

    `async with limit.place():` holds a place. The limit is its own context manager (a place carries no
    state of its own) rather than a generator-based one: that was a generator and two objects per update."""

    def __init__(self, limit: int, max_wait_s: float) -> None:
        self.limit = limit
        self.max_wait_s = max_wait_s
        self._places = asyncio.Semaphore(limit)

    def place(self) -> InFlightLimit:
        return self

    async def __aenter__(self) -> None:
        if self._places.locked():  # only the overloaded case pays for a timer
            try:
                await asyncio.wait_for(self._places.acquire(), self.max_wait_s)
            except TimeoutError:
                raise Overloaded from None
        else:
            await self._places.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self._places.release()


IN_FLIGHT_KEY: web.AppKey[InFlightLimit] = web.AppKey("updates_in_flight", InFlightLimit)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


async def telegram_webhook(request: web.Request) -> web.Response:
    secret = request.app[SECRET_KEY]
    if not secret:
        return _error(403, "webhook is disabled: TELEGRAM_WEBHOOK_SECRET is not configured")
    supplied = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(supplied.encode(), secret.encode()):
        updates("rejected").inc()
        log.warning("webhook_bad_secret")
        return _error(401, "invalid secret token")
    try:
        data = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        updates("rejected").inc()
        log.warning("webhook_malformed_json")
        return _error(400, "body is not valid JSON")
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        updates("rejected").inc()
        log.warning("webhook_not_an_update")
        return _error(400, "body is not a Telegram Update (no integer update_id)")
    try:
        async with request.app[IN_FLIGHT_KEY].place():
            return await _ingest(request.app[INGESTOR_KEY], data)
    except Overloaded:
        updates("overloaded").inc()
        log.warning("webhook_overloaded", update_id=data["update_id"])
        return _error(503, "too many updates in flight; please retry")


async def _ingest(ingestor: Ingestor, data: dict[str, Any]) -> web.Response:
    try:
        update = Update.model_validate(data, context={"bot": ingestor.bot})
    except ValidationError as exc:
        updates("rejected").inc()
        log.warning("webhook_invalid_update", update_id=data["update_id"], errors=exc.error_count())
        return _error(400, "update does not match the Telegram Bot API schema")
    try:
        outcome = await ingestor.ingest(update)
    except EnqueueFailed as exc:
        log.error("webhook_enqueue_failed", update_id=update.update_id, error=str(exc))
        return _error(503, "temporarily unable to accept updates; please retry")
    except Exception:
        # A bug while classifying: keep the update (Telegram retries) and leave a traceback for operators.
        log.exception("webhook_update_failed", update_id=update.update_id)
        return _error(500, "internal error; the update will be retried")
    return web.json_response(text=_ACCEPTED[outcome])


# The answers to an accepted update, serialized once.
_ACCEPTED = {outcome: json.dumps({"ok": True, "outcome": outcome}) for outcome in get_args(Outcome)}
