"""POST /stripe/webhook: verify Stripe's signature on the raw body, then hand the event to the workers.

- The signature is checked over the exact bytes received (parsing first would change them) against
  STRIPE_WEBHOOK_SECRET, with Stripe's default 300 s timestamp tolerance (bot_gateway/stripe_signature.py:
  Stripe's scheme, checked against stripe-python's own verification in the tests),
  so a captured request cannot be replayed later. Anything unverifiable answers 400 and enqueues nothing.
- Only the event id, its type and the session id travel on: the worker re-reads the session from Stripe
  and never trusts this payload (it may be stale or reordered).
- 200 only once the task is published; if the broker is away we answer 503 and Stripe redelivers.
  Event types we do not handle answer 200 at once, so Stripe stops sending them.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import structlog
from aiohttp import web
from celery import Celery

from bot_gateway import stripe_signature
from bot_gateway.enqueue import PUBLISH_RETRY_POLICY
from bot_gateway.metrics import STRIPE_EVENTS
from marketbot.settings import Settings
from tasks.app import CORRELATION_HEADER
from tasks.names import PROCESS_STRIPE_EVENT

log = structlog.get_logger(__name__)

STRIPE_WEBHOOK_PATH = "/stripe/webhook"
SIGNATURE_HEADER = "Stripe-Signature"
HANDLED_TYPES = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    }
)
SECRET_KEY: web.AppKey[str | None] = web.AppKey("stripe_webhook_secret", str)
CELERY_KEY: web.AppKey[Celery] = web.AppKey("stripe_celery", Celery)


def install(app: web.Application, settings: Settings, celery_app: Celery) -> None:
    app[SECRET_KEY] = settings.stripe_webhook_secret
    app[CELERY_KEY] = celery_app
    app.router.add_post(STRIPE_WEBHOOK_PATH, stripe_webhook)


def _answer(status: int, outcome: str, message: str | None = None) -> web.Response:
    STRIPE_EVENTS.labels(outcome).inc()
    body: dict[str, Any] = {"ok": status < 300, "outcome": outcome}
    if message:
        body["error"] = message
    return web.json_response(body, status=status)


async def stripe_webhook(request: web.Request) -> web.Response:
    secret = request.app[SECRET_KEY]
    if not secret:
        return _answer(
            503, "disabled", "Stripe webhooks are disabled: STRIPE_WEBHOOK_SECRET is not configured"
        )
    raw = await request.read()
    try:
        stripe_signature.verify(raw, request.headers.get(SIGNATURE_HEADER), secret)
    except stripe_signature.SignatureInvalid:
        log.warning("stripe_webhook_bad_signature")
        return _answer(400, "rejected", "invalid or missing Stripe-Signature")
    event = _parse(raw)
    if event is None:
        log.warning("stripe_webhook_malformed")
        return _answer(400, "rejected", "body is not a Stripe event")
    event_id, event_type, object_id = event
    if event_type not in HANDLED_TYPES:
        log.info("stripe_webhook_ignored", event_id=event_id, event_type=event_type)
        return _answer(200, "ignored")
    started = time.perf_counter()
    try:
        await asyncio.to_thread(_publish, request.app[CELERY_KEY], event_id, event_type, object_id)
    except Exception as exc:
        log.error("stripe_webhook_enqueue_failed", event_id=event_id, error=type(exc).__name__)
        return _answer(503, "failed", "temporarily unable to accept events; please retry")
    log.info(
        "stripe_event_enqueued",
        event_id=event_id,
        event_type=event_type,
        ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return _answer(200, "enqueued")


def _parse(raw: bytes) -> tuple[str, str, str] | None:
    """(event id, type, the object's id) of a well-formed event, else None."""
    try:
        data = json.loads(raw)
    except ValueError:  # UnicodeDecodeError is one, and verification already decoded the body
        return None
    if not isinstance(data, dict) or data.get("object") != "event":
        return None
    event_id, event_type = data.get("id"), data.get("type")
    obj = (data.get("data") or {}).get("object") if isinstance(data.get("data"), dict) else None
    object_id = obj.get("id") if isinstance(obj, dict) else None
    if not all(isinstance(v, str) and v for v in (event_id, event_type, object_id)):
        return None
    return str(event_id), str(event_type), str(object_id)


def _publish(celery_app: Celery, event_id: str, event_type: str, session_id: str) -> Any:
    return celery_app.send_task(
        PROCESS_STRIPE_EVENT,
        args=[event_id, event_type, session_id],
        headers={CORRELATION_HEADER: event_id},
        retry=True,
        retry_policy=PUBLISH_RETRY_POLICY,
    )
