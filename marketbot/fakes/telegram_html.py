"""HTML ``parse_mode`` of the fake Telegram server: a port of TDLib's ``parse_html``.

Telegram only knows a handful of tags, requires strict nesting and decodes only ``&lt; &gt; &amp; &quot;``
and numeric references; everything else is "can't parse entities". Reproducing that catches markup bugs
(an unescaped ``<`` in a product name, an unclosed ``<b>``) before production does.
"""

from __future__ import annotations

import re
from typing import Any

from marketbot.fakes.telegram_entities import Builder, EntityParseError, Open, byte_offset

__all__ = ["parse_html"]

_HTML_TAGS = {
    "a": "text_link",
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "u": "underline",
    "ins": "underline",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "tg-emoji": "custom_emoji",
    "pre": "pre",
    "code": "code",
    "blockquote": "blockquote",
}
_HTML_ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,8});")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _decode_entity(text: str, i: int) -> tuple[str, int]:
    """Decode an HTML character reference at ``text[i]`` the way Telegram does (only a few named ones)."""
    match = _HTML_ENTITY_RE.match(text, i)
    if match is None:
        return "&", 1
    body = match.group(1)
    if body.startswith("#"):
        code = int(body[2:], 16) if body[1:2] in ("x", "X") else int(body[1:])
        if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            return chr(code), match.end() - i
        return "&", 1
    if body in _NAMED_ENTITIES:
        return _NAMED_ENTITIES[body], match.end() - i
    return "&", 1


def _parse_html_attributes(text: str, i: int, tag: str, begin: int) -> tuple[int, dict[str, str]]:
    """Read ``attr=value`` pairs up to the closing ``>``; returns the index of ``>`` and the attributes."""
    n = len(text)
    attributes: dict[str, str] = {}
    unclosed = EntityParseError(f'Unclosed start tag "{tag}" at byte offset {byte_offset(text, begin)}')
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            raise unclosed
        if text[i] == ">":
            return i, attributes
        name_begin = i
        while i < n and not text[i].isspace() and text[i] not in "=>":
            i += 1
        name = text[name_begin:i].lower()
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            raise unclosed
        if text[i] != "=":
            if tag == "blockquote" and name == "expandable":
                attributes[name] = ""
                continue
            raise EntityParseError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                f"at byte offset {byte_offset(text, begin)}"
            )
        i += 1
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            raise unclosed
        if text[i] not in "'\"":
            token_begin = i
            while i < n and ((text[i].isascii() and text[i].isalnum()) or text[i] in ".-"):
                i += 1
            if i >= n or (not text[i].isspace() and text[i] != ">"):
                raise EntityParseError(
                    f"Unexpected end of name token at byte offset {byte_offset(text, token_begin)}"
                )
            attributes[name] = text[token_begin:i].lower()
            continue
        quote = text[i]
        i += 1
        value: list[str] = []
        while i < n and text[i] != quote:
            if text[i] == "&":
                decoded, used = _decode_entity(text, i)
                value.append(decoded)
                i += used
            else:
                value.append(text[i])
                i += 1
        if i >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {byte_offset(text, begin)}")
        i += 1
        attributes[name] = "".join(value)


def _close_html(out: Builder, top: Open) -> None:
    """Turn a closed HTML tag into its entity, merging ``<pre><code class="language-x">`` like Telegram."""
    kind = _HTML_TAGS[top.name]
    attrs = top.extra
    if top.name == "a":
        url = attrs.get("href") or out.since(top.offset)
        out.entity("text_link", top.offset, url=url)
    elif top.name == "tg-emoji":
        if attrs.get("emoji-id"):
            out.entity("custom_emoji", top.offset, custom_emoji_id=attrs["emoji-id"])
    elif top.name == "code":
        css_class = attrs.get("class", "")
        language = css_class[len("language-") :] if css_class.startswith("language-") else ""
        out.entity("code", top.offset, _language=language)
    elif top.name == "pre":
        language = ""
        last = out.entities[-1] if out.entities else None
        same_range = last is not None and (last["offset"], last["length"]) == (
            top.offset,
            out.offset - top.offset,
        )
        if last is not None and last["type"] == "code" and same_range:
            out.entities.pop()
            language = last.get("_language", "")
        if language:
            out.entity("pre", top.offset, language=language)
        else:
            out.entity("pre", top.offset)
    elif top.name == "blockquote":
        out.entity("expandable_blockquote" if "expandable" in attrs else "blockquote", top.offset)
    else:
        out.entity(kind, top.offset)


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Port of TDLib's ``parse_html``: supported tags only, strict nesting, ``&lt;`` etc. decoded."""
    out = Builder()
    nested: list[Open] = []
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c == "&":
            decoded, used = _decode_entity(text, i)
            out.add(decoded)
            i += used
            continue
        if c != "<":
            out.add(c)
            i += 1
            continue
        begin = i
        i += 1
        if i >= n or text[i] != "/":
            while i < n and not text[i].isspace() and text[i] != ">":
                i += 1
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {byte_offset(text, begin)}")
            tag = text[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise EntityParseError(
                    f'Unsupported start tag "{tag}" at byte offset {byte_offset(text, begin)}'
                )
            i, attributes = _parse_html_attributes(text, i, tag, begin)
            if tag == "span" and attributes.get("class") != "tg-spoiler":
                raise EntityParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset(text, begin)}'
                )
            nested.append(Open(tag, out.offset, byte_offset(text, begin), extra=attributes))
            i += 1
            continue
        if not nested:
            raise EntityParseError(f"Unexpected end tag at byte offset {byte_offset(text, begin)}")
        i += 1
        while i < n and not text[i].isspace() and text[i] != ">":
            i += 1
        end_name = text[begin + 2 : i].lower()
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] != ">":
            raise EntityParseError(f"Unclosed end tag at byte offset {byte_offset(text, begin)}")
        top = nested[-1]
        if end_name and end_name != top.name:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {byte_offset(text, begin)}, expected "</{top.name}>", '
                f'found "</{end_name}>"'
            )
        i += 1
        nested.pop()
        _close_html(out, top)
    if nested:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{nested[-1].name}"')
    for entity in out.entities:
        entity.pop("_language", None)
    return out.text(), out.entities
