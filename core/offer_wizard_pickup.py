"""Reading the pickup window an owner types ("18:00-21:00", "tomorrow 8:00-10:30", "6pm-9pm").

Times are in the venue's timezone; the result is UTC. Without a day the window is today, even when its end
has already passed (the offer rules then refuse it and the wizard says so, instead of guessing tomorrow).
An end at or before the start is refused too, rather than read as running past midnight.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_TIME = r"(\d{1,2})(?:\s*[:.h]\s*(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?"
_WINDOW = re.compile(
    r"^(?:(today|tomorrow|tmrw|tmr|tmw|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2})[\s,]+)?"
    + _TIME
    + r"\s*(?:-|–|—|to|until|till)\s*"
    + _TIME
    + r"$"
)


@dataclass(frozen=True)
class ParsedWindow:
    start: datetime  # UTC
    end: datetime  # UTC


def parse_pickup_window(text: str, zone_name: str, now: datetime) -> ParsedWindow | None:
    """The window in UTC, or None when the text is not a day and two times we understand."""
    cleaned = " ".join(unicodedata.normalize("NFKC", text).lower().split())
    match = _WINDOW.match(cleaned)
    if match is None:
        return None
    day_text, h1, m1, s1, h2, m2, s2 = match.groups()
    zone = ZoneInfo(zone_name)
    today = now.astimezone(zone).date()
    day = _day(day_text, today)
    if s1 is None and s2 is not None and h1 is not None and int(h1) <= 12:
        s1 = s2  # "6-9pm": the suffix covers both times
    first, second = _time(h1, m1, s1), _time(h2, m2, s2)
    if day is None or first is None or second is None:
        return None
    start = datetime.combine(day, first, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day, second, tzinfo=zone).astimezone(UTC)
    return ParsedWindow(start, end)


def _day(text: str | None, today: date) -> date | None:
    if text is None or text == "today":
        return today
    if text in ("tomorrow", "tmrw", "tmr", "tmw"):
        return today + timedelta(days=1)
    try:
        if "/" in text:  # day first, as written across Southeast Asia
            day, month = (int(part) for part in text.split("/"))
            return date(today.year, month, day)
        return date.fromisoformat(text)
    except ValueError:
        return None


def _time(hour_text: str, minute_text: str | None, suffix: str | None) -> time | None:
    hour, minute = int(hour_text), int(minute_text or "0")
    if minute > 59:
        return None
    if suffix is not None:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if suffix.startswith("p") else 0)
    elif hour > 23:
        return None
    return time(hour, minute)
