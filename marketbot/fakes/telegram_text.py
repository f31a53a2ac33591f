"""Formatted text for the fake Telegram server: ``parse_mode`` markup to plain text plus entities.

Telegram turns markup into plain text plus a list of entities *before* it trims, checks lengths and stores
the message, and it rejects malformed markup with "can't parse entities: ...". The most common production
bugs with formatted messages (an unescaped ``.`` in MarkdownV2, an unclosed ``<b>``, a message that is only
too long once tags are counted) only show up against the real parser, so ``telegram_html`` and
``telegram_markdown`` port TDLib's parsers; this module picks one and applies Telegram's trimming.

Offsets and lengths of entities are in UTF-16 code units, as in the Bot API.
"""

from __future__ import annotations

from typing import Any

from marketbot.fakes.telegram_entities import EntityParseError, utf16_len
from marketbot.fakes.telegram_html import parse_html
from marketbot.fakes.telegram_markdown import parse_markdown, parse_markdown_v2

__all__ = ["EntityParseError", "parse_formatted", "strip_formatted", "utf16_len"]

_TRIM = " \t\n\r\x0b\x0c"


def strip_formatted(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Trim surrounding whitespace as Telegram does, shifting and clipping entities to match."""
    stripped = text.strip(_TRIM)
    if stripped == text:
        return text, entities
    lead = len(text) - len(text.lstrip(_TRIM))
    total = utf16_len(stripped)
    fixed: list[dict[str, Any]] = []
    for entity in entities:
        start = max(0, int(entity.get("offset", 0)) - lead)
        end = min(total, int(entity.get("offset", 0)) + int(entity.get("length", 0)) - lead)
        if end > start:
            fixed.append({**entity, "offset": start, "length": end - start})
    return stripped, fixed


def parse_formatted(
    text: str, parse_mode: str | None, entities: list[dict[str, Any]] | None
) -> tuple[str, list[dict[str, Any]]]:
    """Apply ``parse_mode`` (or take explicit ``entities``), then trim; raises EntityParseError/ValueError.

    ValueError (not EntityParseError) means the parse mode itself is unknown.
    """
    mode = (parse_mode or "").lower()
    if not mode:
        plain, found = text, list(entities or [])
    elif mode == "html":
        plain, found = parse_html(text)
    elif mode == "markdownv2":
        plain, found = parse_markdown_v2(text)
    elif mode == "markdown":
        plain, found = parse_markdown(text)
    else:
        raise ValueError(f"unsupported parse_mode {parse_mode!r}")
    found.sort(key=lambda e: (int(e.get("offset", 0)), -int(e.get("length", 0))))
    return strip_formatted(plain, found)
