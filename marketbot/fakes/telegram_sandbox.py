"""A small HTTP control API on the Telegram stand-in, so a person can talk to a local bot without Telegram.

    POST /_sandbox/users/{user_id}/messages   {"text": "/start", "first_name": "Ana"}  → {"update_id": …}
    POST /_sandbox/users/{user_id}/callbacks  {"data": "r:c", "message_id": 12}       → {"update_id": …}
    POST /_sandbox/users/{user_id}/photos                                            → {"update_id": …}
    POST /_sandbox/users/{user_id}/locations  {"latitude": 1.28, "longitude": 103.85} → {"update_id": …}
    POST /_sandbox/users/{user_id}/contacts   {"phone_number": "+6591234567"}         → {"update_id": …}
    GET  /_sandbox/users/{user_id}/messages?after=<message_id>                       → the bot's messages

Used by `marketbot say` (and by the browser sandbox to come). These paths are not part of the Bot API, so
nothing a real Telegram client does can reach them by accident.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from marketbot.fakes.telegram import FakeTelegram


def install_sandbox_routes(app: web.Application, fake: FakeTelegram) -> None:
    async def user_message(request: web.Request) -> web.Response:
        user_id = _user_id(request)
        body = await _json(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise web.HTTPBadRequest(text='{"error": "text is required"}', content_type="application/json")
        update = fake.send_user_message(user_id, text, first_name=str(body.get("first_name") or "Sandbox"))
        return web.json_response({"update_id": update["update_id"]})

    async def user_callback(request: web.Request) -> web.Response:
        user_id = _user_id(request)
        body = await _json(request)
        data = body.get("data")
        if not isinstance(data, str) or not data:
            raise web.HTTPBadRequest(text='{"error": "data is required"}', content_type="application/json")
        message_id = body.get("message_id")
        update = fake.send_callback(user_id, data, message_id=int(message_id) if message_id else None)
        return web.json_response({"update_id": update["update_id"]})

    async def user_photo(request: web.Request) -> web.Response:
        user_id = _user_id(request)
        update = fake.send_user_photo(user_id)
        return web.json_response({"update_id": update["update_id"]})

    async def user_location(request: web.Request) -> web.Response:
        user_id = _user_id(request)
        body = await _json(request)
        try:
            latitude, longitude = float(body["latitude"]), float(body["longitude"])
        except (KeyError, TypeError, ValueError):
            raise web.HTTPBadRequest(
                text='{"error": "latitude and longitude are required"}', content_type="application/json"
            ) from None
        update = fake.send_location(user_id, latitude, longitude)
        return web.json_response({"update_id": update["update_id"]})

    async def user_contact(request: web.Request) -> web.Response:
        user_id = _user_id(request)
        body = await _json(request)
        update = fake.send_contact(user_id, str(body.get("phone_number") or "+6590000000"), own=True)
        return web.json_response({"update_id": update["update_id"]})

    async def bot_messages(request: web.Request) -> web.Response:
        user_id = _user_id(request)
        after = int(request.query.get("after", "0") or 0)
        return web.json_response({"messages": fake.bot_messages(user_id, after=after)})

    app.router.add_post("/_sandbox/users/{user_id}/messages", user_message)
    app.router.add_post("/_sandbox/users/{user_id}/callbacks", user_callback)
    app.router.add_get("/_sandbox/users/{user_id}/messages", bot_messages)
    app.router.add_post("/_sandbox/users/{user_id}/photos", user_photo)
    app.router.add_post("/_sandbox/users/{user_id}/locations", user_location)
    app.router.add_post("/_sandbox/users/{user_id}/contacts", user_contact)


def _user_id(request: web.Request) -> int:
    try:
        value = int(request.match_info["user_id"])
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "user id must be a number"}', content_type="application/json"
        ) from None
    if value <= 0:
        raise web.HTTPBadRequest(
            text='{"error": "user id must be positive"}', content_type="application/json"
        )
    return value


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "body must be JSON"}', content_type="application/json"
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text='{"error": "body must be a JSON object"}', content_type="application/json"
        )
    return body
