"""The one translation function. Every user-facing string goes through `t`.

Supported languages: en, id, th, vi, ms, zh-Hans. A language without a translation for a key falls back to
English, so adding a language is adding a catalog module. Parameters are HTML-escaped here because every
message is sent with parse_mode=HTML and parameters may hold user-provided text (names, titles).
"""

from __future__ import annotations

import html
from collections.abc import Mapping

from core.locales import en, en_discovery, en_maintenance, en_menu, en_offers, en_orders, en_purchase

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "id", "th", "vi", "ms", "zh-Hans")
DEFAULT_LANGUAGE = "en"

_ENGLISH: dict[str, str] = {
    **en.MESSAGES,
    **en_offers.MESSAGES,
    **en_purchase.MESSAGES,
    **en_orders.MESSAGES,
    **en_discovery.MESSAGES,
    **en_menu.MESSAGES,
    **en_maintenance.MESSAGES,
}
_CATALOGS: dict[str, Mapping[str, str]] = {"en": _ENGLISH}

# Telegram sends IETF tags as clients report them ("zh-hans", "zh-CN", "in" for Indonesian on old Androids).
_ALIASES = {
    "zh": "zh-Hans",
    "zh-hans": "zh-Hans",
    "zh-cn": "zh-Hans",
    "zh-sg": "zh-Hans",
    "in": "id",
    "id": "id",
    "th": "th",
    "vi": "vi",
    "ms": "ms",
    "en": "en",
}


def resolve_language(code: str | None) -> str:
    """Map a Telegram language_code to one of SUPPORTED_LANGUAGES (English when unknown)."""
    if not code:
        return DEFAULT_LANGUAGE
    lowered = code.strip().lower()
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    base = lowered.split("-", 1)[0]
    return _ALIASES.get(base, DEFAULT_LANGUAGE)


class Html(str):
    """Text that is already HTML (typically another t() result): t() inserts it without escaping again."""


def t(key: str, lang: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """Translate `key` into `lang`, formatting HTML-escaped `params`. Unknown keys raise KeyError.

    The result is an `Html` (a str), so it can be a parameter of another t() without being escaped twice.
    """
    catalog = _CATALOGS.get(lang, {})
    template = catalog.get(key) or _ENGLISH[key]
    safe = {
        name: value if isinstance(value, Html) else html.escape(str(value), quote=False)
        for name, value in params.items()
    }
    return Html(template.format(**safe))


def all_keys() -> frozenset[str]:
    return frozenset(_ENGLISH)
