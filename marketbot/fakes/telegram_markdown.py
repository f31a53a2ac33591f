"""MarkdownV2 and legacy Markdown ``parse_mode`` of the fake Telegram server (ports of TDLib's parsers).

MarkdownV2's rule that every reserved character outside markup must be escaped is the most frequent cause
of "can't parse entities" in production (prices like ``4.50``, item names with ``-``), so the fake enforces
it with Telegram's exact error text.
"""

from __future__ import annotations

from typing import Any

from marketbot.fakes.telegram_entities import Builder, EntityParseError, Open, byte_offset

__all__ = ["parse_markdown", "parse_markdown_v2"]

_MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


def _mdv2_is_end(top: Open, text: str, i: int) -> bool:
    c = text[i]
    nxt = text[i + 1 : i + 2]
    return {
        "bold": c == "*",
        "italic": c == "_" and nxt != "_",
        "code": c == "`",
        "pre": text.startswith("```", i),
        "text_link": c == "]",
        "custom_emoji": c == "]",
        "underline": c == "_" and nxt == "_",
        "strikethrough": c == "~",
        "spoiler": c == "|" and nxt == "|",
    }[top.name]


def _skip_pre_header(text: str, i: int) -> tuple[int, str]:
    """After an opening ```: read an optional language and skip one leading newline, like TDLib."""
    n = len(text)
    end = i
    while end < n and not text[end].isspace() and text[end] != "`":
        end += 1
    language = ""
    if end != i and end < n and text[end] != "`":
        language, i = text[i:end], end
    if i < n and text[i] in "\r\n":
        i += 2 if i + 1 < n and text[i + 1] in "\r\n" and text[i] != text[i + 1] else 1
    return i, language


def _mdv2_url(text: str, i: int) -> tuple[int, str | None]:
    """Read ``(url)`` after a closing ``]``; returns the index of ``)`` (or of ``]``) and the URL."""
    if text[i + 1 : i + 2] != "(":
        return i, None
    i += 2
    begin = i
    url: list[str] = []
    while i < len(text) and text[i] != ")":
        if text[i] == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126:
            url.append(text[i + 1])
            i += 2
            continue
        url.append(text[i])
        i += 1
    if i >= len(text):
        raise EntityParseError(f"Can't find end of a URL at byte offset {byte_offset(text, begin)}")
    return i, "".join(url)


def parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Port of TDLib's ``parse_markdown_v2``: every reserved character outside markup must be escaped."""
    out = Builder()
    nested: list[Open] = []
    quote_start: int | None = None
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        in_code = bool(nested) and nested[-1].name in ("code", "pre")
        at_line_start = i == 0 or text[i - 1] == "\n"
        if c == ">" and at_line_start and not in_code:
            if quote_start is None:
                quote_start = out.offset
            i += 1
            continue
        if c == "\n" and quote_start is not None and text[i + 1 : i + 2] != ">":
            out.entity("blockquote", quote_start)
            quote_start = None
        if c == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            out.add(text[i + 1])
            i += 2
            continue
        reserved = "`" if in_code else _MDV2_RESERVED
        if c not in reserved:
            out.add(c)
            i += 1
            continue
        if nested and _mdv2_is_end(nested[-1], text, i):
            top = nested.pop()
            if top.name in ("underline", "spoiler"):
                i += 1
            elif top.name == "pre":
                i += 2
            if top.name in ("text_link", "custom_emoji"):
                i, url = _mdv2_url(text, i)
                if top.name == "custom_emoji":
                    if not url or not url.startswith("tg://emoji?id="):
                        raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
                    out.entity("custom_emoji", top.offset, custom_emoji_id=url.split("=", 1)[1])
                else:
                    out.entity("text_link", top.offset, url=url if url is not None else out.since(top.offset))
            elif top.name == "pre" and top.argument:
                out.entity("pre", top.offset, language=top.argument)
            else:
                out.entity(top.name, top.offset)
            i += 1
            continue
        begin = i
        argument = ""
        if c == "_" and text[i + 1 : i + 2] == "_":
            name, i = "underline", i + 1
        elif c in "_*~[":
            name = {"_": "italic", "*": "bold", "~": "strikethrough", "[": "text_link"}[c]
        elif c == "|" and text[i + 1 : i + 2] == "|":
            name, i = "spoiler", i + 1
        elif c == "!" and text[i + 1 : i + 2] == "[":
            name, i = "custom_emoji", i + 1
        elif c == "`" and text.startswith("```", i):
            i, argument = _skip_pre_header(text, i + 3)
            name, i = "pre", i - 1
        elif c == "`":
            name = "code"
        else:
            raise EntityParseError(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
        nested.append(Open(name, out.offset, byte_offset(text, begin), argument))
        i += 1
    if nested:
        top = nested[-1]
        raise EntityParseError(
            f"Can't find end of {_MDV2_NAMES[top.name]} entity at byte offset {top.byte_offset}"
        )
    if quote_start is not None:
        out.entity("blockquote", quote_start)
    return out.text(), out.entities


def parse_markdown(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Port of TDLib's legacy ``parse_markdown`` (``*bold*``, ``_italic_``, backticks, ``[text](url)``)."""
    out = Builder()
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c == "\\" and text[i + 1 : i + 2] in ("_", "*", "`", "["):
            out.add(text[i + 1])
            i += 2
            continue
        if c not in "_*`[":
            out.add(c)
            i += 1
            continue
        begin = i
        end_char = "]" if c == "[" else c
        is_pre = c == "`" and text.startswith("```", i)
        language = ""
        i += 1
        if is_pre:
            i, language = _skip_pre_header(text, i + 2)
        start = out.offset
        while i < n and (text[i] != end_char or (is_pre and not text.startswith("```", i))):
            out.add(text[i])
            i += 1
        if i >= n:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset {byte_offset(text, begin)}"
            )
        if c == "[":
            url: str | None = None
            if text[i + 1 : i + 2] == "(":
                close = text.find(")", i + 2)
                if close != -1:
                    url, i = text[i + 2 : close], close
            out.entity("text_link", start, url=url if url is not None else out.since(start))
        elif is_pre:
            out.entity("pre", start, **({"language": language} if language else {}))
            i += 2
        else:
            out.entity({"_": "italic", "*": "bold", "`": "code"}[c], start)
        i += 1
    return out.text(), out.entities
