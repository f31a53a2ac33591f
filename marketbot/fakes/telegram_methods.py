"""Bot API method handlers of the fake Telegram server: behaviour and results of each method.

Each handler runs with ``FakeTelegramState.lock`` held, takes decoded parameters and returns the ``result``
Telegram would return, or raises ``ApiError`` with Telegram's own error text. Results are shaped so that
aiogram's pydantic models accept them, and validation reproduces the errors production code must survive
(message length after entity parsing, BUTTON_DATA_INVALID, "message is not modified", flood limits, ...).
``getUpdates`` needs to wait, so only its synchronous parts live here; the server module does the waiting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from marketbot.fakes.telegram_images import image_size
from marketbot.fakes.telegram_params import (
    chat_id_param,
    formatted_param,
    int_param,
    message_id_param,
    reply_markup_param,
)
from marketbot.fakes.telegram_state import (
    ApiError,
    FakeTelegramState,
    InjectedFailure,
    UploadedFile,
    WebhookConfig,
    bad_request,
)

__all__ = [
    "GET_UPDATES_CONFLICT",
    "Described",
    "canonical_method",
    "check_injected",
    "dispatch",
    "prepare_get_updates",
]

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same as a "
    "current message content and reply markup of the message"
)
GET_UPDATES_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
MAX_CALLBACK_ANSWER = 200

_CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")


@dataclass
class Described:
    """A successful result that also carries Telegram's ``description`` (setWebhook/deleteWebhook do)."""

    result: Any
    description: str


def canonical_method(name: str) -> str | None:
    """Telegram matches method names case-insensitively; return the camelCase spelling if known."""
    return _CANONICAL.get(name.lower())


# -- shared behaviour --------------------------------------------------------------------------------------


def _check_blocked(state: FakeTelegramState, chat_id: int) -> None:
    if chat_id in state.blocked:
        raise ApiError(403, "Forbidden: bot was blocked by the user")


def _new_message(state: FakeTelegramState, chat_id: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """Envelope of a bot message (id, sender, chat, date), resolving what it replies to."""
    reply_parameters = params.get("reply_parameters")
    reply: dict[str, Any] = reply_parameters if isinstance(reply_parameters, dict) else {}
    reply_to = reply.get("message_id") or params.get("reply_to_message_id")
    original = state.message(chat_id, reply_to) if isinstance(reply_to, int) else None
    allow_missing = reply.get("allow_sending_without_reply") or params.get("allow_sending_without_reply")
    if reply_to and original is None and not allow_missing:
        raise bad_request("message to be replied not found")
    message: dict[str, Any] = {
        "message_id": state.next_message_id(chat_id),
        "from": state.bot_user(),
        "chat": state.chat(chat_id),
        "date": state.now(),
    }
    if original is not None:
        message["reply_to_message"] = {k: v for k, v in original.items() if k != "reply_to_message"}
    return message


def _finish_send(
    state: FakeTelegramState, chat_id: int, message: dict[str, Any], markup: dict[str, Any] | None, now: float
) -> dict[str, Any]:
    if markup is not None:
        message["reply_markup"] = markup
    state.store_message(message, from_bot=True)
    state.count_send(chat_id, now)
    return dict(message)


def _set_formatted(
    message: dict[str, Any], key: str, text: str | None, entities: list[dict[str, Any]]
) -> None:
    entities_key = "entities" if key == "text" else "caption_entities"
    message.pop(key, None)
    message.pop(entities_key, None)
    if text is not None:
        message[key] = text
    if entities:
        message[entities_key] = entities


# -- handlers ---------------------------------------------------------------------------------------------

Handler = Callable[[FakeTelegramState, str, dict[str, Any], float], Any]


def _get_me(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    return {
        **state.bot_user(),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


def _send_message(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    chat_id = chat_id_param(params)
    text, entities = formatted_param(params, "text")
    markup = reply_markup_param(params)
    _check_blocked(state, chat_id)
    state.check_flood(chat_id, now)
    message = _new_message(state, chat_id, params)
    _set_formatted(message, "text", text, entities)
    return _finish_send(state, chat_id, message, markup, now)


def _send_photo(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    chat_id = chat_id_param(params)
    photo = params.get("photo")
    if photo is None or photo == "":
        raise bad_request("there is no photo in the request")
    if isinstance(photo, str) and photo.startswith("attach://"):
        raise bad_request("wrong file identifier/HTTP URL specified")
    caption, entities = formatted_param(params, "caption")
    markup = reply_markup_param(params)
    _check_blocked(state, chat_id)
    size = image_size(photo.data) if isinstance(photo, UploadedFile) else None
    state.check_flood(chat_id, now)
    message = _new_message(state, chat_id, params)
    if isinstance(photo, UploadedFile) and size is not None:
        message["photo"] = state.uploaded_photo_sizes(photo, *size)
    else:
        message["photo"] = state.photo_sizes(str(photo), 0)
    _set_formatted(message, "caption", caption, entities)
    if params.get("has_spoiler"):
        message["has_media_spoiler"] = True
    if params.get("show_caption_above_media"):
        message["show_caption_above_media"] = True
    return _finish_send(state, chat_id, message, markup, now)


def _send_location(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    chat_id = chat_id_param(params)
    location = {key: params.get(key) for key in ("latitude", "longitude")}
    if not all(isinstance(v, float | int) and not isinstance(v, bool) for v in location.values()):
        raise bad_request("wrong latitude/longitude specified")
    markup = reply_markup_param(params)
    _check_blocked(state, chat_id)
    state.check_flood(chat_id, now)
    message = _new_message(state, chat_id, params)
    message["location"] = location
    return _finish_send(state, chat_id, message, markup, now)


def _editable(state: FakeTelegramState, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The stored bot message an edit* call addresses, or Telegram's error for it."""
    if params.get("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")
    chat_id = chat_id_param(params)
    message_id = message_id_param(params)
    message = state.message(chat_id, message_id)
    if message is None:
        raise bad_request("message to edit not found")
    if not state.is_bot_message(chat_id, message_id):
        raise bad_request("message can't be edited")
    return chat_id, message


def _apply_edit(
    state: FakeTelegramState, chat_id: int, message: dict[str, Any], changes: dict[str, Any], now: float
) -> dict[str, Any]:
    """Apply an edit unless nothing changes ("message is not modified"), counting it for flood limits."""
    if all(message.get(key) == value for key, value in changes.items()):
        raise bad_request(NOT_MODIFIED)
    state.check_flood(chat_id, now)
    for key, value in changes.items():
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value
    message["edit_date"] = state.now()
    state.count_send(chat_id, now)
    return dict(message)


def _edit_message_text(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    chat_id, message = _editable(state, params)
    text, entities = formatted_param(params, "text")
    markup = reply_markup_param(params)
    if "text" not in message:
        raise bad_request("there is no text in the message to edit")
    changes = {"text": text, "entities": entities or None, "reply_markup": markup}
    return _apply_edit(state, chat_id, message, changes, now)


def _edit_message_caption(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    chat_id, message = _editable(state, params)
    caption, entities = formatted_param(params, "caption")
    markup = reply_markup_param(params)
    if "text" in message or "location" in message:
        raise bad_request("there is no caption in the message to edit")
    changes = {"caption": caption, "caption_entities": entities or None, "reply_markup": markup}
    return _apply_edit(state, chat_id, message, changes, now)


def _edit_message_reply_markup(
    state: FakeTelegramState, token: str, params: dict[str, Any], now: float
) -> Any:
    chat_id, message = _editable(state, params)
    return _apply_edit(state, chat_id, message, {"reply_markup": reply_markup_param(params)}, now)


def _delete_message(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    chat_id = chat_id_param(params)
    if not state.delete_message(chat_id, message_id_param(params)):
        raise bad_request("message to delete not found")
    return True


def _answer_callback_query(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    if len(str(params.get("text") or "")) > MAX_CALLBACK_ANSWER:
        raise bad_request("MESSAGE_TOO_LONG")
    query_id = str(params.get("callback_query_id") or "")
    if state.callback_queries.get(query_id, True):
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    state.callback_queries[query_id] = True
    return True


def _send_chat_action(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    chat_id = chat_id_param(params)
    action = params.get("action")
    if not action:
        raise bad_request("action is empty")
    if action not in _CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    _check_blocked(state, chat_id)
    return True


def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
    scope = params.get("scope") if isinstance(params.get("scope"), dict) else {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")


def _set_my_commands(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    commands = params.get("commands")
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > 100:
        raise bad_request("too many commands")
    for command in commands:
        if not isinstance(command, dict) or not _COMMAND_RE.fullmatch(str(command.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(command.get("description", ""))) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    state.commands[_commands_key(params)] = [
        {"command": c["command"], "description": c["description"]} for c in commands
    ]
    return True


def _get_my_commands(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    return [dict(c) for c in state.commands.get(_commands_key(params), [])]


def _delete_my_commands(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    state.commands.pop(_commands_key(params), None)
    return True


def _set_chat_menu_button(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    button = params.get("menu_button") or {"type": "default"}
    if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
        raise bad_request("can't parse menu button JSON object")
    chat_id = params.get("chat_id")
    state.menu_buttons[chat_id if isinstance(chat_id, int) else None] = button
    return True


def _get_chat_menu_button(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    chat_id = params.get("chat_id")
    key = chat_id if isinstance(chat_id, int) else None
    return dict(state.menu_buttons.get(key) or state.menu_buttons.get(None) or {"type": "default"})


def _set_webhook(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    url = str(params.get("url") or "")
    if not url:
        return _delete_webhook(state, token, params, now)
    if not url.startswith(("https://", "http://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = params.get("secret_token")
    if secret is not None and secret != "" and not _SECRET_RE.fullmatch(str(secret)):
        raise bad_request("secret token contains unallowed characters")
    allowed = params.get("allowed_updates")
    if allowed is not None and not isinstance(allowed, list):
        raise bad_request("can't parse allowed updates JSON object")
    max_connections = int_param(params, "max_connections", 40)
    previous = state.webhook
    if params.get("drop_pending_updates"):
        state.drop_pending()
    state.webhook = WebhookConfig(
        url=url,
        token=token,
        secret_token=str(secret) if secret else None,
        max_connections=max(1, min(100, max_connections)),
    )
    if isinstance(allowed, list):
        state.allowed_updates = [str(a) for a in allowed] or None
    state.changed()
    already = previous is not None and previous.url == url
    return Described(True, "Webhook is already set" if already else "Webhook was set")


def _delete_webhook(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    previous = state.webhook
    state.webhook = None
    if params.get("drop_pending_updates"):
        state.drop_pending()
    state.changed()
    return Described(True, "Webhook was deleted" if previous else "Webhook is already deleted")


def _get_webhook_info(state: FakeTelegramState, token: str, params: dict[str, Any], now: float) -> Any:
    info: dict[str, Any] = {
        "url": "",
        "has_custom_certificate": False,
        "pending_update_count": len(state.updates),
    }
    hook = state.webhook
    if hook is not None:
        info.update(url=hook.url, max_connections=hook.max_connections, ip_address="127.0.0.1")
        if state.allowed_updates:
            info["allowed_updates"] = list(state.allowed_updates)
        if hook.last_error_date is not None:
            info.update(last_error_date=hook.last_error_date, last_error_message=hook.last_error_message)
    return info


def prepare_get_updates(state: FakeTelegramState, params: dict[str, Any]) -> tuple[int, float]:
    """The synchronous part of getUpdates: conflict check, offset confirmation; returns (limit, timeout)."""
    if state.webhook is not None:
        raise ApiError(409, GET_UPDATES_CONFLICT)
    offset = params.get("offset")
    if isinstance(offset, int):
        state.confirm(offset)
    allowed = params.get("allowed_updates")
    if isinstance(allowed, list):
        state.allowed_updates = [str(a) for a in allowed] or None
    limit = int_param(params, "limit", 100)
    timeout = int_param(params, "timeout", 0)
    return max(1, min(100, limit)), float(max(0, timeout))


def check_injected(state: FakeTelegramState, method: str) -> None:
    """Raise the next failure queued by ``FakeTelegram.fail_next`` for this method, if any."""
    failure: InjectedFailure | None = state.pop_failure(method)
    if failure is not None:
        raise ApiError(failure.status, failure.description, failure.retry_after)


_HANDLERS: dict[str, Handler] = {
    "getMe": _get_me,
    "sendMessage": _send_message,
    "sendPhoto": _send_photo,
    "sendLocation": _send_location,
    "editMessageText": _edit_message_text,
    "editMessageCaption": _edit_message_caption,
    "editMessageReplyMarkup": _edit_message_reply_markup,
    "deleteMessage": _delete_message,
    "answerCallbackQuery": _answer_callback_query,
    "sendChatAction": _send_chat_action,
    "setMyCommands": _set_my_commands,
    "getMyCommands": _get_my_commands,
    "deleteMyCommands": _delete_my_commands,
    "setChatMenuButton": _set_chat_menu_button,
    "getChatMenuButton": _get_chat_menu_button,
    "setWebhook": _set_webhook,
    "deleteWebhook": _delete_webhook,
    "getWebhookInfo": _get_webhook_info,
}
_CANONICAL = {name.lower(): name for name in [*_HANDLERS, "getUpdates"]}


def dispatch(state: FakeTelegramState, method: str, token: str, params: dict[str, Any], now: float) -> Any:
    """Run a (canonical) method other than getUpdates; caller holds the state lock."""
    check_injected(state, method)
    return _HANDLERS[method](state, token, params, now)
