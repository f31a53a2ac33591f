"""POST /telegram/webhook: secret check, parse, ingest; 2xx only once the update is safely enqueued.

We do not use aiogram's SimpleRequestHandler: by default it answers 200 before handling, so an enqueue
failure would lose the update. Here a failure answers 503 and Telegram redelivers.
"""

from __future__ import annotations

import hmac
import json

import structlog
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from bot_gateway.enqueue import EnqueueFailed
from bot_gateway.ingest import Ingestor
from bot_gateway.metrics import UPDATES

log = structlog.get_logger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret
INGESTOR_KEY: web.AppKey[Ingestor] = web.AppKey("ingestor", Ingestor)
SECRET_KEY: web.AppKey[str | None] = web.AppKey("webhook_secret", str)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


async def telegram_webhook(request: web.Request) -> web.Response:
    secret = request.app[SECRET_KEY]
    if not secret:
        return _error(403, "webhook is disabled: TELEGRAM_WEBHOOK_SECRET is not configured")
    supplied = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(supplied.encode(), secret.encode()):
        UPDATES.labels("rejected").inc()
        log.warning("webhook_bad_secret")
        return _error(401, "invalid secret token")
    try:
        data = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        UPDATES.labels("rejected").inc()
        log.warning("webhook_malformed_json")
        return _error(400, "body is not valid JSON")
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        UPDATES.labels("rejected").inc()
        log.warning("webhook_not_an_update")
        return _error(400, "body is not a Telegram Update (no integer update_id)")
    ingestor = request.app[INGESTOR_KEY]
    try:
        update = Update.model_validate(data, context={"bot": ingestor.bot})
    except ValidationError as exc:
        UPDATES.labels("rejected").inc()
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
    return web.json_response({"ok": True, "outcome": outcome})
