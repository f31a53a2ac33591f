"""Primitives shared by the fake Telegram server's markup parsers (HTML, MarkdownV2, Markdown).

Telegram measures entity offsets and lengths in UTF-16 code units and reports parse errors at UTF-8 byte
offsets; these helpers keep both bookkeeping rules in one place so every parser reports like TDLib does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Builder", "EntityParseError", "Open", "byte_offset", "utf16_len"]


class EntityParseError(ValueError):
    """Markup that Telegram refuses; ``str(exc)`` is the text after "Bad Request: can't parse entities: "."""


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of entity offsets in the Bot API."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Open:
    """An entity whose start has been seen but whose end has not (yet)."""

    name: str
    offset: int
    byte_offset: int
    argument: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Builder:
    """Accumulates plain text and tracks the UTF-16 position while a parser walks the markup."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.offset = 0
        self.entities: list[dict[str, Any]] = []

    def add(self, chunk: str) -> None:
        self.parts.append(chunk)
        self.offset += utf16_len(chunk)

    def text(self) -> str:
        return "".join(self.parts)

    def since(self, start: int) -> str:
        """Text emitted since UTF-16 position ``start`` (used when a link has no explicit URL)."""
        raw = self.text().encode("utf-16-le")
        return raw[start * 2 :].decode("utf-16-le")

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.offset > start:
            self.entities.append({"type": kind, "offset": start, "length": self.offset - start, **extra})


def byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))
