"""Turn one outbox Bot API call into the calls Telegram will accept, before anything is sent.

Texts over 4096 characters become several messages (the keyboard rides on the last), captions over 1024 a
photo plus a follow-up message, over-long callback answers are shortened, and payloads Telegram would
refuse anyway (callback data over 64 bytes, too-long edits) are rejected here without a network call.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.telegram_limits import (
    MAX_ANSWER_CALLBACK_CHARS,
    MAX_CAPTION_CHARS,
    MAX_TEXT_CHARS,
    OUTBOX_METHODS,
    check_callback_data,
    split_html_text,
    truncate_caption,
    utf16_length,
    visible_length,
)

SUPPORTED_METHODS = frozenset(OUTBOX_METHODS)


@dataclass(frozen=True)
class Rejected:
    """Telegram (or our validation) refused the payload; retrying cannot help."""

    reason: str


@dataclass(frozen=True)
class Call:
    method: str
    payload: dict[str, Any]


def plan_calls(method: str, payload: dict[str, Any]) -> list[Call] | Rejected:
    if method not in SUPPORTED_METHODS:
        return Rejected(f"unsupported method {method}")
    try:
        _check_keyboard(payload.get("reply_markup"))
    except ValueError as exc:
        return Rejected(str(exc))
    if method == "sendMessage":
        return _plan_text(payload)
    if method == "sendPhoto":
        return _plan_photo(payload)
    if method in ("editMessageText", "editMessageCaption"):
        is_text = method == "editMessageText"
        field, limit = ("text", MAX_TEXT_CHARS) if is_text else ("caption", MAX_CAPTION_CHARS)
        length = _measure(str(payload.get(field) or ""), payload)
        if length > limit:
            # An edit replaces one message; it can't grow into several.
            return Rejected(f"{field} too long for {method}: {length} > {limit}")
    if method == "answerCallbackQuery":
        payload = _fit_callback_answer(payload)
    return [Call(method, payload)]


def _check_keyboard(markup: Any) -> None:
    if not isinstance(markup, dict):
        return
    for row in markup.get("inline_keyboard") or ():
        for button in row:
            if isinstance(button, dict) and "callback_data" in button:
                check_callback_data(str(button["callback_data"]))


def _is_html(payload: dict[str, Any]) -> bool:
    return str(payload.get("parse_mode") or "").lower() == "html"


def _is_plain(payload: dict[str, Any], entities_field: str) -> bool:
    return not payload.get("parse_mode") and not payload.get(entities_field)


def _measure(text: str, payload: dict[str, Any]) -> int:
    """The length Telegram will count for HTML or plain text; for Markdown an upper bound (the raw length:
    its markup characters don't count), which is exact enough to accept what surely fits."""
    return visible_length(text) if _is_html(payload) else utf16_length(text)


def _split(text: str, payload: dict[str, Any], limit: int, entities_field: str) -> list[str] | None:
    """Pieces of text that each fit `limit`, in the payload's parse mode; None if it can't be split."""
    if _is_html(payload):
        return split_html_text(text, limit)
    if _is_plain(payload, entities_field):
        # Plain text is HTML with nothing to parse: escape, split with the HTML splitter, unescape.
        return [html.unescape(p) for p in split_html_text(html.escape(text, quote=False), limit)]
    return None  # Markdown, or explicit entities whose offsets a split would break


def _plan_text(payload: dict[str, Any]) -> list[Call] | Rejected:
    text = str(payload.get("text") or "")
    if _measure(text, payload) <= MAX_TEXT_CHARS:
        return [Call("sendMessage", payload)]
    pieces = _split(text, payload, MAX_TEXT_CHARS, "entities")
    if pieces is None:
        return Rejected("text too long and not splittable (use parse_mode HTML or plain text)")
    return _text_calls(payload, pieces)


def _text_calls(payload: dict[str, Any], pieces: Sequence[str]) -> list[Call]:
    """One sendMessage per piece: the reply target on the first, the keyboard on the last."""
    calls = []
    for index, piece in enumerate(pieces):
        part = {k: v for k, v in payload.items() if k not in ("reply_markup", "reply_parameters")}
        part["text"] = piece
        if index == 0 and "reply_parameters" in payload:
            part["reply_parameters"] = payload["reply_parameters"]
        if index == len(pieces) - 1 and "reply_markup" in payload:
            part["reply_markup"] = payload["reply_markup"]
        calls.append(Call("sendMessage", part))
    return calls


# What a follow-up message to a photo keeps from the photo's payload.
_FOLLOW_UP_FIELDS = (
    "chat_id",
    "business_connection_id",
    "message_thread_id",
    "parse_mode",
    "disable_notification",
    "protect_content",
    "reply_markup",
)


def _plan_photo(payload: dict[str, Any]) -> list[Call] | Rejected:
    caption = str(payload.get("caption") or "")
    if _measure(caption, payload) <= MAX_CAPTION_CHARS:
        return [Call("sendPhoto", payload)]
    if _is_html(payload):
        head, rest = truncate_caption(caption)
    elif _is_plain(payload, "caption_entities"):
        escaped_head, escaped_rest = truncate_caption(html.escape(caption, quote=False))
        head = html.unescape(escaped_head)
        rest = None if escaped_rest is None else html.unescape(escaped_rest)
    else:
        return Rejected("caption too long and not splittable (use parse_mode HTML or plain text)")
    photo = {k: v for k, v in payload.items() if k != "reply_markup"}
    photo["caption"] = head
    if not rest:
        return [Call("sendPhoto", payload | {"caption": head})]
    # The keyboard goes under the last message, so the buttons follow the whole text (and the returned
    # message id is the one carrying them, which a later edit of the keyboard needs).
    follow_up = {k: payload[k] for k in _FOLLOW_UP_FIELDS if k in payload}
    pieces = _split(rest, follow_up, MAX_TEXT_CHARS, "entities") or [rest]
    return [Call("sendPhoto", photo), *_text_calls(follow_up, pieces)]


def merge_rest(calls: Sequence[Call]) -> tuple[str, dict[str, Any]]:
    """The unsent tail of a split message as one sendMessage, to be split again when it is retried.

    Only follow-up text messages are ever left over (a photo goes first), and the last of them carries the
    keyboard and all shared fields. Pieces are joined by a blank line, where the next split cuts again.
    """
    payload = dict(calls[-1].payload)
    payload["text"] = "\n\n".join(str(c.payload.get("text") or "") for c in calls)
    return "sendMessage", payload


def _fit_callback_answer(payload: dict[str, Any]) -> dict[str, Any]:
    """Shorten a too-long toast rather than lose it: Telegram refuses more than 200 characters."""
    text = payload.get("text")
    if not isinstance(text, str) or utf16_length(text) <= MAX_ANSWER_CALLBACK_CHARS:
        return payload
    kept: list[str] = []
    width = 0
    for char in text:
        width += utf16_length(char)
        if width > MAX_ANSWER_CALLBACK_CHARS - 1:  # room for the ellipsis
            break
        kept.append(char)
    return {**payload, "text": "".join(kept).rstrip() + "…"}
