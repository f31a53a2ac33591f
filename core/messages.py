"""Outgoing messages as plain values, rendered to Bot API payloads (HTML parse mode).

Core decides what to say; the outbox stores the rendered payload; the Bot API sender delivers it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Literal

from core.callbacks import MAX_CALLBACK_BYTES

# Outbox payload field of a sendPhoto whose photo is a QR code of this text (no Bot API field has this name).
QR_PAYLOAD_FIELD = "marketbot_qr_data"


@dataclass(frozen=True)
class InlineButton:
    text: str
    callback_data: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if (self.callback_data is None) == (self.url is None):
            raise ValueError("an inline button needs exactly one of callback_data or url")
        if self.callback_data is not None and not (
            0 < len(self.callback_data.encode("utf-8")) <= MAX_CALLBACK_BYTES
        ):
            raise ValueError("callback_data must be 1-64 bytes")

    def to_api(self) -> dict[str, str]:
        # Labels are plain text (Telegram parses no HTML in buttons) but are built with t(), which escapes
        # its parameters for HTML messages: undo that here, once, so "Fish & Chips" doesn't read "&amp;".
        out = {"text": html.unescape(self.text)}
        if self.callback_data is not None:
            out["callback_data"] = self.callback_data
        if self.url is not None:
            out["url"] = self.url
        return out


@dataclass(frozen=True)
class RequestKeyboard:
    """A one-button reply keyboard asking Telegram to share the user's location or own phone number."""

    button_text: str
    request: Literal["location", "contact"] = "location"

    def to_api(self) -> dict[str, Any]:
        return {
            "keyboard": [[{"text": self.button_text, f"request_{self.request}": True}]],
            "resize_keyboard": True,
            "one_time_keyboard": True,
        }


Keyboard = tuple[tuple[InlineButton, ...], ...]


@dataclass(frozen=True)
class Reply:
    """One message to a chat: a new message, or an edit of the message a button sat on."""

    chat_id: int
    text: str
    inline_keyboard: Keyboard = ()
    reply_keyboard: RequestKeyboard | None = None
    remove_reply_keyboard: bool = False
    edit_message_id: int | None = None
    # A Telegram file_id: sent as a photo with `text` as its caption (≤ 1024 characters).
    photo: str | None = None
    # Text to render as a QR code image and send as a photo with `text` as its caption (a pickup code's
    # deep link). The PNG is drawn by the Bot API sender at send time, so the outbox stores only this text.
    qr_data: str | None = None
    kind: Literal["message"] = field(default="message")

    def to_bot_api(self) -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = {
            "chat_id": self.chat_id,
            "text": self.text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        markup: dict[str, Any] | None = None
        if self.inline_keyboard:
            markup = {"inline_keyboard": [[b.to_api() for b in row] for row in self.inline_keyboard]}
        elif self.reply_keyboard is not None:
            markup = self.reply_keyboard.to_api()
        elif self.remove_reply_keyboard:
            markup = {"remove_keyboard": True}
        if markup is not None:
            payload["reply_markup"] = markup
        if self.qr_data is not None:
            payload["caption"] = payload.pop("text")
            del payload["link_preview_options"]
            payload[QR_PAYLOAD_FIELD] = self.qr_data
            return "sendPhoto", payload
        if self.photo is not None:
            payload["caption"] = payload.pop("text")
            del payload["link_preview_options"]
            if self.edit_message_id is not None:  # a photo stays; only its caption and buttons change
                payload["message_id"] = self.edit_message_id
                return "editMessageCaption", payload
            payload["photo"] = self.photo
            return "sendPhoto", payload
        if self.edit_message_id is not None:
            payload["message_id"] = self.edit_message_id
            return "editMessageText", payload
        return "sendMessage", payload
