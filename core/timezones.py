"""Timezone and currency suggestions for a venue, from its location pin. Pure and offline.

Coarse boxes for the markets we launch in, checked in order (smaller countries first, where boxes overlap);
the owner always confirms or picks another zone, so a wrong guess costs one tap, never a wrong time.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

# (south, north, west, east), IANA zone, currency
_REGIONS: tuple[tuple[tuple[float, float, float, float], str, str], ...] = (
    ((1.15, 1.48, 103.6, 104.1), "Asia/Singapore", "SGD"),
    ((0.85, 7.4, 109.5, 119.3), "Asia/Kuching", "MYR"),  # Sabah and Sarawak
    ((1.2, 6.75, 99.6, 104.5), "Asia/Kuala_Lumpur", "MYR"),
    ((8.2, 23.4, 102.1, 109.5), "Asia/Ho_Chi_Minh", "VND"),
    ((5.6, 20.5, 97.3, 105.7), "Asia/Bangkok", "THB"),
    ((-11.0, 6.0, 95.0, 114.6), "Asia/Jakarta", "IDR"),
    ((-11.0, 6.0, 114.6, 126.0), "Asia/Makassar", "IDR"),
    ((-11.0, 6.0, 126.0, 141.1), "Asia/Jayapura", "IDR"),
    ((18.0, 53.6, 73.5, 135.1), "Asia/Shanghai", "CNY"),
)

# Offered as buttons; index-addressed in callback data to stay within Telegram's 64 bytes.
TIMEZONE_CHOICES: tuple[str, ...] = (
    "Asia/Singapore",
    "Asia/Kuala_Lumpur",
    "Asia/Jakarta",
    "Asia/Makassar",
    "Asia/Bangkok",
    "Asia/Ho_Chi_Minh",
    "Asia/Shanghai",
    "Europe/London",
    "UTC",
)
CURRENCY_CHOICES: tuple[str, ...] = ("SGD", "MYR", "IDR", "THB", "VND", "CNY", "USD", "EUR", "GBP")
# ISO 4217 codes we accept when typed (Stripe-supported, common in our markets and for tourists).
KNOWN_CURRENCIES: frozenset[str] = frozenset(
    (*CURRENCY_CHOICES, "AUD", "HKD", "JPY", "KRW", "PHP", "TWD", "INR", "NZD", "CHF", "CAD", "BND")
)


def suggest_timezone(latitude: float, longitude: float) -> str | None:
    for (south, north, west, east), zone, _currency in _REGIONS:
        if south <= latitude <= north and west <= longitude <= east:
            return zone
    return None


def suggest_currency(timezone: str | None) -> str | None:
    return next((currency for _box, zone, currency in _REGIONS if zone == timezone), None)


def valid_timezone(name: str) -> str | None:
    """The canonical IANA name for `name` (case-insensitive), or None if it is not a zone we can use."""
    candidate = name.strip()
    if not candidate or len(candidate) > 64:
        return None
    lowered = candidate.lower()
    match = next((zone for zone in _all_zones() if zone.lower() == lowered), None)
    if match is None:
        return None
    try:
        ZoneInfo(match)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return match


_ZONES: tuple[str, ...] = ()


def _all_zones() -> tuple[str, ...]:
    global _ZONES
    if not _ZONES:
        _ZONES = tuple(sorted(available_timezones()))
    return _ZONES
