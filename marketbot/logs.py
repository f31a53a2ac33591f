"""Structured JSON logs with correlation ids, and no personal data (DESIGN.md invariant 6).

Every process calls `configure_logging`. The scrubber runs last before rendering, on our structlog events
and on stdlib records (Celery, aiogram, aiohttp) alike:
- fields that hold personal data (names, usernames, phones, message text, captions, locations, addresses)
  are replaced by "[redacted]";
- user and chat ids are replaced by a keyed hash (HMAC-SHA256 with LOG_HASH_KEY), so one user's lines can
  still be followed without revealing who they are.
`bind_correlation_id` puts the id in a contextvar so every line of an update's handling carries it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

REDACTED = "[redacted]"

PERSONAL_FIELDS = frozenset(
    {
        "first_name",
        "last_name",
        "full_name",
        "username",
        "name",
        "phone",
        "phone_number",
        "contact",
        "text",
        "caption",
        "message_text",
        "latitude",
        "longitude",
        "location",
        "address",
        "email",
    }
)
ID_FIELDS = frozenset({"user_id", "telegram_user_id", "chat_id", "from_id", "actor_telegram_user_id"})

_hash_key = b"marketbot-dev-log-key"


def hash_id(value: object) -> str:
    """Keyed hash of a user/chat id: stable within a deployment, meaningless outside it."""
    digest = hmac.new(_hash_key, str(value).encode(), hashlib.sha256).hexdigest()
    return f"u_{digest[:16]}"


def scrub(event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        value = event[key]
        if key in PERSONAL_FIELDS and value is not None:
            event[key] = REDACTED
        elif key in ID_FIELDS and value is not None and not str(value).startswith("u_"):
            event[key] = hash_id(value)
        elif isinstance(value, dict):
            event[key] = scrub(dict(value))
    return event


def _scrub_processor(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return scrub(event)


def configure_logging(
    level: str = "INFO", *, fmt: str = "json", hash_key: str | None = None, stream: Any = None
) -> None:
    """Route structlog and stdlib logging through one JSON (or console) renderer with the scrubber."""
    global _hash_key
    if hash_key:
        _hash_key = hash_key.encode()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _scrub_processor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        # Drop a line below the level first, before the processors spend ~40 us building it for nothing.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log would print request lines with query strings; our own middleware logs requests.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def bind_correlation_id(correlation_id: str | None) -> None:
    structlog.contextvars.clear_contextvars()
    if correlation_id:
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)


def current_correlation_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("correlation_id")
    return str(value) if value else None


@contextmanager
def correlation(correlation_id: str | None) -> Iterator[None]:
    tokens = structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
