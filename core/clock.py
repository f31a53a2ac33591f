"""The one clock. Code takes `now` as a parameter; entrypoints pass `utcnow`, tests pass fixed times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)
