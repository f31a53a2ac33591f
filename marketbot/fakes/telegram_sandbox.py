"""A small HTTP control API on the Telegram stand-in, so a person can talk to a local bot without Telegram.

    POST /_sandbox/users/{user_id}/messages   {"text": "/start", "first_name": "Ana"}  → {"update_id": …}
    POST /_sandbox/users/{user_id}/callbacks  {"data": "r:c", "message_id": 12}       → {"update_id": …}
    POST /_sandbox/users/{user_id}/photos     (body: a PNG/JPEG/GIF as image/…, or none) → {"update_id": …}
    POST /_sandbox/users/{user_id}/locations  {"latitude": 1.28, "longitude": 103.85} → {"update_id": …}
    POST /_sandbox/users/{user_id}/contacts   {"phone_number": "+6591234567"}         → {"update_id": …}
    GET  /_sandbox/users/{user_id}/messages?after=<message_id>                       → the bot's messages
    GET  /_sandbox/users/{user_id}/chat       the whole private chat (the user's messages too, as stored,
                                              edits applied, deletions gone), the answers to the user's
                                              button presses ("notices": answerCallbackQuery texts) and
                                              the reply keyboard the bot last set or removed
    GET  /_sandbox/files/{file_id}            the bytes behind a photo's file_id (uploaded by the bot or
                                              sent by a user through /photos with a body)

Every POST turns into an Update that the stand-in delivers exactly as Telegram does (webhook with the secret
header, or getUpdates), so the bot cannot tell these users from real ones. Each POST may carry
"first_name" (query parameter for /photos), so a simulated user keeps one name across kinds of updates.

Used by `marketbot say` and the browser sandbox (`marketbot.sandbox`, whose page is served here too). These
paths are not part of the Bot API, so nothing a real Telegram client does can reach them by accident.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from aiohttp import web

from marketbot.fakes.telegram_images import image_size
from marketbot.fakes.telegram_state import ApiError, UploadedFile

if TYPE_CHECKING:
    from marketbot.fakes.telegram import FakeTelegram

CHAT_HISTORY_LIMIT = 300
_SENDS = frozenset({"sendMessage", "sendPhoto", "sendLocation"})
_IMAGE_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8": "image/jpeg", b"GIF8": "image/gif"}


def install_sandbox_routes(app: web.Application, fake: FakeTelegram) -> None:
    # Callback query ids this API created, by user: their answers are shown to that user as notices.
    query_owners: dict[str, int] = {}

    async def user_message(request: web.Request) -> web.Response:
        user_id = _user_id(request)
        body = await _json(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _bad("text is required")
        update = fake.send_user_message(user_id, text, first_name=_first_name(body))
        return web.json_response({"update_id": update["update_id"]})

    async def user_callback(request: web.Request) -> web.Response:
        user_id = _user_id(request)
        body = await _json(request)
        data = body.get("data")
        if not isinstance(data, str) or not data:
            raise _bad("data is required")
        message_id = body.get("message_id")
        update = fake.send_callback(
            user_id,
            data,
            message_id=int(message_id) if message_id else None,
            first_name=_first_name(body),
        )
        query_owners[update["callback_query"]["id"]] = user_id
        return web.json_response({"update_id": update["update_id"]})

    async def user_photo(request: web.Request) -> web.Response:
        user_id = _user_id(request)
        first_name = _first_name(dict(request.query))
        caption = request.query.get("caption") or None
        # An image body (Content-Type image/…) is the photo; anything else (`say --photo` posts {}) gets
        # Telegram-shaped sizes with no bytes behind them.
        data = await request.read() if request.content_type.startswith("image/") else b""
        if not data:
            update = fake.send_user_photo(user_id, caption=caption, first_name=first_name)
        else:
            update = _send_uploaded_photo(fake, user_id, data, caption=caption, first_name=first_name)
        return web.json_response({"update_id": update["update_id"]})

    async def user_location(request: web.Request) -> web.Response:
        user_id = _user_id(request)
        body = await _json(request)
        try:
            latitude, longitude = float(body["latitude"]), float(body["longitude"])
        except (KeyError, TypeError, ValueError):
            raise _bad("latitude and longitude are required") from None
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise _bad("latitude must be within ±90 and longitude within ±180")
        update = fake.send_location(user_id, latitude, longitude, first_name=_first_name(body))
        return web.json_response({"update_id": update["update_id"]})

    async def user_contact(request: web.Request) -> web.Response:
        user_id = _user_id(request)
        body = await _json(request)
        update = fake.send_contact(
            user_id,
            str(body.get("phone_number") or "+6590000000"),
            own=True,
            first_name=_first_name(body),
        )
        return web.json_response({"update_id": update["update_id"]})

    async def bot_messages(request: web.Request) -> web.Response:
        user_id = _user_id(request)
        after = int(request.query.get("after", "0") or 0)
        return web.json_response({"messages": fake.bot_messages(user_id, after=after)})

    async def chat(request: web.Request) -> web.Response:
        user_id = _user_id(request)
        state = fake._state  # the stand-in's own memory; this module is part of the stand-in
        with state.lock:
            stored = state.messages.get(user_id, {})
            messages = [copy.deepcopy(stored[i]) for i in sorted(stored)[-CHAT_HISTORY_LIMIT:]]
        notices: list[dict[str, Any]] = []
        keyboard: dict[str, Any] | None = None
        for index, call in enumerate(fake.calls()):
            if call.status != 200:
                continue
            if call.method == "answerCallbackQuery":
                if (
                    call.params.get("text")
                    and query_owners.get(str(call.params.get("callback_query_id"))) == user_id
                ):
                    text, alert = str(call.params["text"]), bool(call.params.get("show_alert"))
                    notices.append({"id": index, "text": text, "show_alert": alert})
            elif call.method in _SENDS and call.params.get("chat_id") == user_id:
                # Messages never echo a reply keyboard (Telegram's Message has only inline markup), but the
                # person's app shows it until another message replaces or removes it: so does the page.
                markup = call.params.get("reply_markup")
                if isinstance(markup, dict) and ("keyboard" in markup or "remove_keyboard" in markup):
                    keyboard = {"markup": markup, "message_id": call.response["result"]["message_id"]}
        return web.json_response({"messages": messages, "notices": notices, "reply_keyboard": keyboard})

    async def file(request: web.Request) -> web.Response:
        try:
            upload = fake.uploaded_file(request.match_info["file_id"])
        except KeyError:
            raise web.HTTPNotFound(
                text='{"error": "no bytes are known for this file_id"}', content_type="application/json"
            ) from None
        return web.Response(
            body=upload.data,
            content_type=upload.content_type if upload.content_type.startswith("image/") else "image/png",
            headers={"Cache-Control": "max-age=86400, immutable"},  # a file_id never changes its bytes
        )

    app.router.add_post("/_sandbox/users/{user_id}/messages", user_message)
    app.router.add_post("/_sandbox/users/{user_id}/callbacks", user_callback)
    app.router.add_get("/_sandbox/users/{user_id}/messages", bot_messages)
    app.router.add_get("/_sandbox/users/{user_id}/chat", chat)
    app.router.add_post("/_sandbox/users/{user_id}/photos", user_photo)
    app.router.add_post("/_sandbox/users/{user_id}/locations", user_location)
    app.router.add_post("/_sandbox/users/{user_id}/contacts", user_contact)
    app.router.add_get("/_sandbox/files/{file_id}", file)

    from marketbot.sandbox.page import install_page_routes

    install_page_routes(app, bot_username=lambda: fake.bot_username)


def _send_uploaded_photo(
    fake: FakeTelegram, user_id: int, data: bytes, *, caption: str | None, first_name: str
) -> dict[str, Any]:
    """A user sends these image bytes: the Update lists the sizes Telegram would make of them, and every
    file_id keeps the bytes, so the bot can send the photo on by file_id and the page can show it."""
    try:
        width, height = image_size(data)
    except ApiError as exc:
        raise _bad(exc.description) from None
    kind = next((t for magic, t in _IMAGE_TYPES.items() if data.startswith(magic)), "image/png")
    upload = UploadedFile(filename="photo", content_type=kind, data=data)
    state = fake._state
    # One lock for the whole step: the delivery loop must not send the Update before its files exist.
    with state.lock:
        content: dict[str, Any] = {"photo": state.uploaded_photo_sizes(upload, width, height)}
        if caption:
            content["caption"] = caption
        user = fake._user(user_id, first_name, None, "en")
        return copy.deepcopy(state.enqueue({"message": fake._user_message(user, content)}))


def _bad(message: str) -> web.HTTPBadRequest:
    import json

    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _first_name(body: dict[str, Any]) -> str:
    return str(body.get("first_name") or "Sandbox")[:64]


def _user_id(request: web.Request) -> int:
    try:
        value = int(request.match_info["user_id"])
    except ValueError:
        raise _bad("user id must be a number") from None
    if value <= 0:
        raise _bad("user id must be positive")
    return value


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _bad("body must be JSON") from None
    if not isinstance(body, dict):
        raise _bad("body must be a JSON object")
    return body
