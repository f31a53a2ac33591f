"""Request parameters of the fake Telegram server: typing form values, and Telegram's shared validations.

Telegram receives every parameter as a string in form encodings and reads it as the type the method expects;
nested objects (reply_markup, entities, ...) arrive as JSON text. Tests assert on decoded values, and the
handlers share the same checks Telegram applies everywhere (chat_id, text length after entity parsing,
inline keyboards), so those live here, with Telegram's error texts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from marketbot.fakes.telegram_state import UploadedFile, bad_request
from marketbot.fakes.telegram_text import EntityParseError, parse_formatted

__all__ = [
    "MAX_CAPTION",
    "MAX_TEXT",
    "chat_id_param",
    "decode_params",
    "formatted_param",
    "int_param",
    "message_id_param",
    "reply_markup_param",
]

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA_BYTES = 64

_INT_FIELDS = {
    "chat_id",
    "message_id",
    "reply_to_message_id",
    "message_thread_id",
    "offset",
    "limit",
    "timeout",
    "cache_time",
    "max_connections",
    "user_id",
    "from_chat_id",
    "live_period",
    "heading",
    "proximity_alert_radius",
}
_BOOL_FIELDS = {
    "disable_notification",
    "protect_content",
    "show_alert",
    "drop_pending_updates",
    "disable_web_page_preview",
    "allow_sending_without_reply",
    "has_spoiler",
    "show_caption_above_media",
    "allow_paid_broadcast",
}
_FLOAT_FIELDS = {"latitude", "longitude", "horizontal_accuracy"}
_JSON_ERRORS = {
    "reply_markup": "can't parse reply keyboard markup JSON object",
    "entities": "can't parse entities JSON object",
    "caption_entities": "can't parse entities JSON object",
    "allowed_updates": "can't parse allowed updates JSON object",
    "commands": "can't parse commands JSON object",
    "scope": "can't parse BotCommandScope JSON object",
    "menu_button": "can't parse menu button JSON object",
    "link_preview_options": "can't parse link preview options JSON object",
    "reply_parameters": "can't parse reply parameters JSON object",
}
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_INT_RE = re.compile(r"-?\d+")


# -- decoding --------------------------------------------------------------------------------------------


def _coerce(name: str, value: Any) -> Any:
    """Give a form/query string the JSON type Telegram reads for that parameter."""
    if isinstance(value, UploadedFile):
        return value
    if name in _JSON_ERRORS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(_JSON_ERRORS[name]) from None
    if name in _INT_FIELDS and isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        return int(value)
    if name in _BOOL_FIELDS and isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    if name in _FLOAT_FIELDS and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def decode_params(fields: list[tuple[str, Any]]) -> dict[str, Any]:
    """Typed params from raw (name, value) pairs; ``attach://name`` points at an uploaded part."""
    files = {name: value for name, value in fields if isinstance(value, UploadedFile)}
    params: dict[str, Any] = {}
    attached: set[str] = set()
    for name, value in fields:
        if isinstance(value, str) and value.startswith("attach://") and value[9:] in files:
            attached.add(value[9:])
            value = files[value[9:]]
        params[name] = value
    for name in attached:
        if not isinstance(params.get(name), str):
            params.pop(name, None)
    return {name: _coerce(name, value) for name, value in params.items()}


def chat_id_param(params: Mapping[str, Any]) -> int:
    value = params.get("chat_id")
    if value is None or value == "":
        raise bad_request("chat_id is empty")
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request("chat not found")
    return value


def int_param(params: Mapping[str, Any], name: str, default: int) -> int:
    value = params.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def message_id_param(params: Mapping[str, Any]) -> int:
    value = params.get("message_id")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise bad_request("message identifier is not specified")
    return value


def formatted_param(params: Mapping[str, Any], key: str) -> tuple[str | None, list[dict[str, Any]]]:
    """Parse ``text`` (required) or ``caption`` with parse_mode/entities, then check it like Telegram.

    Lengths are counted on the parsed text, as Telegram does: markup does not count towards the limit.
    """
    required = key == "text"
    prefix = "" if required else "caption_"
    limit, too_long = (
        (MAX_TEXT, "message is too long") if required else (MAX_CAPTION, "message caption is too long")
    )
    raw = params.get(key)
    if raw is None or raw == "":
        if required:
            raise bad_request("message text is empty")
        return None, []
    entities = params.get(f"{prefix}entities")
    if entities is not None and not isinstance(entities, list):
        raise bad_request("can't parse entities JSON object")
    try:
        text, parsed = parse_formatted(str(raw), params.get("parse_mode"), entities)
    except EntityParseError as exc:
        raise bad_request(f"can't parse entities: {exc}") from None
    except ValueError:
        raise bad_request("unsupported parse_mode") from None
    if required and not text:
        raise bad_request("message text is empty")
    if len(text) > limit:
        raise bad_request(too_long)
    return (text or None), parsed


def reply_markup_param(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """Validate reply_markup; returns the inline keyboard to echo on the message (others are not echoed)."""
    markup = params.get("reply_markup")
    if markup is None or markup == "":
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        rows = markup.get("keyboard", [])
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
        return None
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    buttons = [button for row in rows for button in row]
    if len(buttons) > 100:
        raise bad_request("reply markup is too long")
    for button in buttons:
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
        if not any(action in button for action in _BUTTON_ACTIONS):
            raise bad_request(
                "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
            )
        if "callback_data" in button:
            size = len(str(button["callback_data"]).encode("utf-8"))
            if size == 0 or size > MAX_CALLBACK_DATA_BYTES:
                raise bad_request("BUTTON_DATA_INVALID")
        if "url" in button and not button["url"]:
            raise bad_request("BUTTON_URL_INVALID")
    return markup if buttons else None
