"""Wire-format helpers of the fake Telegram server: request bodies in, webhook POSTs out.

Telegram accepts parameters as a query string, ``application/x-www-form-urlencoded``, ``multipart/form-data``
(what aiogram sends once a file is attached) or ``application/json``, and a webhook may answer an update with
a method call in its response body (aiogram's ``SimpleRequestHandler`` does, as multipart). Keeping the
decoding here lets the server module stay about behaviour, not bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from marketbot.fakes.telegram_state import UploadedFile, bad_request
from marketbot.fakes.telegram_text import utf16_len

__all__ = ["WebhookAttempt", "auto_entities", "post_update", "read_request_fields"]

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret
_COMMAND_RE = re.compile(r"(?<![^\s])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/@])")
_MENTION_RE = re.compile(r"(?<![^\s])@[A-Za-z0-9_]{5,32}(?![\w@])")
_URL_RE = re.compile(r"(?<![^\s])https?://[^\s]+")


@dataclass
class WebhookAttempt:
    """Outcome of one webhook POST: HTTP status (0 = no HTTP answer), error text, method call in the reply."""

    status: int
    error: str | None
    reply: list[tuple[str, Any]] | None


async def read_request_fields(request: web.Request) -> list[tuple[str, Any]]:
    """(name, value) pairs from the query string and the body, in whatever encoding Telegram accepts."""
    fields: list[tuple[str, Any]] = list(request.query.items())
    if not request.body_exists:
        return fields
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise bad_request("can't parse JSON object") from None
        if not isinstance(data, dict):
            raise bad_request("JSON object expected")
        fields.extend(data.items())
        return fields
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                data_bytes = value.file.read()
                fields.append((name, UploadedFile(value.filename, value.content_type, data_bytes)))
            else:
                fields.append(
                    (name, value if isinstance(value, str) else bytes(value).decode("utf-8", "replace"))
                )
    return fields


async def _read_reply(response: aiohttp.ClientResponse) -> list[tuple[str, Any]] | None:
    """A method call a webhook returned in its 2xx body (JSON or multipart with a ``method`` field)."""
    if response.content_type == "application/json":
        try:
            data = json.loads(await response.read() or b"null")
        except ValueError:
            return None
        if isinstance(data, dict) and data.get("method"):
            return list(data.items())
        return None
    if response.content_type != "multipart/form-data":
        return None
    fields: list[tuple[str, Any]] = []
    reader = aiohttp.MultipartReader(response.headers, response.content)
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
            continue
        raw = await part.read(decode=True)
        if part.filename:
            content_type = part.headers.get(aiohttp.hdrs.CONTENT_TYPE, "application/octet-stream")
            fields.append((part.name, UploadedFile(part.filename, content_type, bytes(raw))))
        else:
            fields.append((part.name, bytes(raw).decode("utf-8", "replace")))
    return fields if any(name == "method" for name, _ in fields) else None


async def post_update(
    session: aiohttp.ClientSession, url: str, secret: str | None, update: dict[str, Any], seconds: float
) -> WebhookAttempt:
    """POST one update the way Telegram does; never raises for network trouble (that is a failed attempt)."""
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[SECRET_HEADER] = secret
    try:
        async with session.post(
            url, data=json.dumps(update), headers=headers, timeout=aiohttp.ClientTimeout(total=seconds)
        ) as response:
            if not 200 <= response.status < 300:
                await response.read()
                return WebhookAttempt(
                    response.status,
                    f"Wrong response from the webhook: {response.status} {response.reason}",
                    None,
                )
            try:
                reply = await _read_reply(response)
            except (aiohttp.ClientError, ValueError, UnicodeError):
                reply = None
            return WebhookAttempt(response.status, None, reply)
    except TimeoutError:
        return WebhookAttempt(0, "Read timeout expired", None)
    except aiohttp.ClientConnectorError:
        return WebhookAttempt(0, "Connection refused", None)
    except aiohttp.ClientError as exc:
        return WebhookAttempt(0, f"Connection failed: {type(exc).__name__}", None)


def auto_entities(text: str) -> list[dict[str, Any]]:
    """Entities Telegram adds to a user's plain message: bot commands, @mentions and URLs."""
    found: list[dict[str, Any]] = []
    for kind, pattern in (("bot_command", _COMMAND_RE), ("mention", _MENTION_RE), ("url", _URL_RE)):
        for match in pattern.finditer(text):
            found.append(
                {"offset": utf16_len(text[: match.start()]), "length": utf16_len(match.group()), "type": kind}
            )
    found.sort(key=lambda e: e["offset"])
    return found
