"""The one Bot API sender every worker uses: limits checked, rate budget reserved, outcome classified.

`BotApiSender.send(method, payload)` takes a Bot API call as stored in the outbox and returns what happened
as a small value the caller can act on without knowing aiogram:

- `Sent(message_id)`: delivered (or an edit that changed nothing, which Telegram reports as an error);
- `RetryLater(after, reason)`: try again in `after` seconds (flood control, Telegram 5xx, network trouble,
  or our own shared rate limit said wait: `CHAT_RATE_LIMITED` when it is the chat's own next slot);
- `Blocked(reason)`: the user blocked the bot or is gone; never retry;
- `Rejected(reason)`: Telegram (or our validation) refused the payload; retrying cannot help.

It speaks to Telegram through the real aiogram client. aiogram is async and a `Bot`'s aiohttp session must
stay on the event loop that created it, while Celery tasks are sync: each thread (a prefork child is one
thread) gets its own loop and `Bot`, created on first use and reused, so connections are pooled per thread.

Never log message text, names or other personal data: chat ids go through `hash_id`, Telegram error
descriptions have quoted fragments (which may echo message text) masked.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import redis
import structlog
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.types import BufferedInputFile, Message
from pydantic import ValidationError

from core.messages import QR_PAYLOAD_FIELD
from tasks.adapters.qr import QR_FILENAME, qr_png
from tasks.adapters.ratelimit import TelegramRateLimiter
from tasks.adapters.telegram_plan import SUPPORTED_METHODS, Call, Rejected, merge_rest, plan_calls

log = structlog.get_logger(__name__)

METHODS: dict[str, type[TelegramMethod[Any]]] = {
    "sendMessage": SendMessage,
    "sendPhoto": SendPhoto,
    "editMessageText": EditMessageText,
    "editMessageCaption": EditMessageCaption,
    "editMessageReplyMarkup": EditMessageReplyMarkup,
    "answerCallbackQuery": AnswerCallbackQuery,
    "deleteMessage": DeleteMessage,
}
assert set(METHODS) == SUPPORTED_METHODS

# Backoffs for failures that carry no retry_after of their own. Short: the outbox caller adds its own
# growing backoff per attempt, and a user is waiting for this reply.
SERVER_ERROR_BACKOFF = 2.0
NETWORK_ERROR_BACKOFF = 1.0
# A bad token is an operator's mistake; don't burn the message's attempts while it gets fixed.
UNAUTHORIZED_BACKOFF = 60.0
LIMITER_DOWN_BACKOFF = 1.0
# RetryLater.reason for a 429: `after` is Telegram's own retry_after, to be honoured as given.
FLOOD_CONTROL = "flood_control"
# RetryLater.reason when the chat's own limit (1/s, or a 429's retry_after for the chat) holds the call back
# and the sender hands the wait back instead of sleeping through it (`hand_back_chat_waits`).
CHAT_RATE_LIMITED = "chat_rate_limited"
# RetryLater.reason when the bot-wide budget would keep us waiting longer than max_inline_wait.
RATE_LIMITED = "rate_limited"
DEFAULT_REQUEST_TIMEOUT = 15.0

# Telegram's descriptions for edits that changed nothing (a double tap on a button): the message already
# shows what we wanted, so this is success (DEPENDENCIES.md).
_NOT_MODIFIED = "message is not modified"
# Kept out of log lines: descriptions like `Unsupported start tag "..."` echo pieces of the message.
_QUOTED = re.compile(r'"[^"]*"')


@dataclass(frozen=True)
class Sent:
    """Delivered. `message_id` of the (last) message sent; None for calls that return no message."""

    message_id: int | None


@dataclass(frozen=True)
class RetryLater:
    """Not delivered (or only partly); try again in `after` seconds.

    `attempted` is False when Telegram was never called (our shared rate limit said wait), so the caller
    should not count it as a failed attempt. `resume_with` is set when the first part of a split message
    already reached the user: retry that (method, payload) instead of the original, or the user gets the
    first part twice.
    """

    after: float
    reason: str
    attempted: bool = True
    resume_with: tuple[str, dict[str, Any]] | None = None


@dataclass(frozen=True)
class Blocked:
    """The chat can't be reached (user blocked the bot, deactivated, kicked us). Never retry."""

    reason: str


SendResult = Sent | RetryLater | Blocked | Rejected

__all__ = [
    "CHAT_RATE_LIMITED",
    "FLOOD_CONTROL",
    "Blocked",
    "BotApiSender",
    "Rejected",
    "RetryLater",
    "SendResult",
    "Sent",
]


@dataclass
class _ThreadClient:
    loop: asyncio.AbstractEventLoop
    bot: Bot
    pid: int


def _redacted(_chat_id: int) -> str:
    return "redacted"


class BotApiSender:
    """Send Bot API calls from sync worker code; see the module docstring for the result types.

    Waiting for a send slot: a wait for the bot-wide budget is slept through inline, up to
    `max_inline_wait` (it is a fraction of a second, and while every worker waits for it the bot sends at its
    full rate anyway). A wait for the chat's own slot is slept through too, unless `hand_back_chat_waits`:
    then it comes back at once as `RetryLater(wait, CHAT_RATE_LIMITED, attempted=False)`. Workers hand it
    back (tasks/runtime.py): a task asleep on one chat's 1/s is a worker slot no other chat can use.
    """

    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        limiter: TelegramRateLimiter,
        max_inline_wait: float = 2.0,
        hand_back_chat_waits: bool = False,
        hash_id: Callable[[int], str] = _redacted,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        self._token = token
        self._base_url = base_url
        self._limiter = limiter
        self._max_inline_wait = max_inline_wait
        self._hand_back_chat_waits = hand_back_chat_waits
        self._hash_id = hash_id
        self._request_timeout = request_timeout
        self._local = threading.local()
        self._clients: list[_ThreadClient] = []
        self._clients_lock = threading.Lock()

    # -- public ------------------------------------------------------------------------------------------

    def send(self, method: str, payload: dict[str, Any], *, reply: str | None = None) -> SendResult:
        """Validate, split if needed, take a rate slot (see the class docstring), call Telegram.

        `reply`: the reply (correlation id) this call belongs to. Right behind another call of the same
        reply to the chat, it may use the chat's reply burst (tasks/adapters/ratelimit.py); the later parts
        of a split message always do."""
        chat_id = payload.get("chat_id")
        planned = plan_calls(method, payload)
        if isinstance(planned, Rejected):
            self._log_outcome(method, chat_id, planned)
            return planned
        last_message_id: int | None = None
        for index, call in enumerate(planned):
            # Built before the slot is taken: a payload Telegram would refuse costs no slot, and the call
            # leaves as soon after its slot as possible (Telegram counts arrivals, not our reservations).
            prepared = _prepare(call)
            if isinstance(prepared, Rejected):
                result: SendResult = prepared
            else:
                throttled = self._throttle(call, follow_up=index > 0, reply=reply)
                result = throttled if throttled is not None else self._call(call, prepared)
            if isinstance(result, Sent):
                if result.message_id is not None:
                    last_message_id = result.message_id
                continue
            if isinstance(result, RetryLater) and index > 0:
                result = RetryLater(
                    result.after, result.reason, result.attempted, resume_with=merge_rest(planned[index:])
                )
            self._log_outcome(method, chat_id, result, part=index, parts=len(planned))
            return result
        sent = Sent(last_message_id)
        self._log_outcome(method, chat_id, sent, parts=len(planned))
        return sent

    def chat_wait(self, chat_id: int, *, reply: str | None = None) -> float:
        """How long a call to `chat_id` would now be handed back for the chat's own slot (0.0: it may go
        now, as far as the chat is concerned). Always 0.0 for a sender that sleeps through chat waits, and
        when the limiter can't be asked: the send itself then finds out."""
        if not self._hand_back_chat_waits:
            return 0.0
        try:
            return self._limiter.chat_wait(chat_id, reply=reply)
        except redis.RedisError:
            return 0.0

    def close(self) -> None:
        """Close every thread's Bot session and loop. Call once no send is in flight (worker shutdown)."""
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            # A client inherited across fork shares its sockets with the parent: just forget it.
            if client.pid != os.getpid() or client.loop.is_closed():
                continue
            try:
                client.loop.run_until_complete(client.bot.session.close())
            finally:
                client.loop.close()
        self._local = threading.local()

    # -- internals ---------------------------------------------------------------------------------------

    def _client(self) -> _ThreadClient:
        client: _ThreadClient | None = getattr(self._local, "client", None)
        # Recreate after a fork (Celery prefork children) or after close().
        if client is None or client.pid != os.getpid() or client.loop.is_closed():
            session = AiohttpSession(
                api=TelegramAPIServer.from_base(self._base_url), timeout=self._request_timeout
            )
            client = _ThreadClient(asyncio.new_event_loop(), Bot(self._token, session=session), os.getpid())
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _throttle(self, call: Call, *, follow_up: bool, reply: str | None) -> RetryLater | None:
        """Take a slot in the shared budget; RetryLater (nothing sent) for a wait not to sleep through."""
        if call.method == "answerCallbackQuery":
            return None  # not a message: it doesn't count against the chat's or the bot's send limits
        chat_id = call.payload.get("chat_id")  # None for inline-message edits: global budget only
        deadline = time.monotonic() + self._max_inline_wait
        while True:
            ahead = max(0.0, deadline - time.monotonic())
            try:
                slot = self._limiter.try_reserve(chat_id, follow_up=follow_up, reply=reply, ahead=ahead)
            except redis.RedisError:
                # Failing closed: sending blind across all workers is how a bot earns long flood bans.
                return RetryLater(LIMITER_DOWN_BACKOFF, "rate_limiter_unavailable", attempted=False)
            if slot.taken:
                if slot.global_wait > 0:
                    time.sleep(slot.global_wait)  # our booked slot in the bot-wide budget
                return None
            if slot.chat_wait > 0 and self._hand_back_chat_waits:
                return RetryLater(slot.wait, CHAT_RATE_LIMITED, attempted=False)
            if time.monotonic() + slot.wait > deadline:
                return RetryLater(slot.wait, RATE_LIMITED, attempted=False)
            time.sleep(slot.wait)

    def _call(self, call: Call, method: TelegramMethod[Any]) -> SendResult:
        client = self._client()
        try:
            returned = client.loop.run_until_complete(client.bot(method))
        except TelegramRetryAfter as exc:
            # Keep every worker off this chat (or the whole bot) until Telegram says we may resume.
            self._limiter.penalize(call.payload.get("chat_id"), float(exc.retry_after))
            return RetryLater(float(exc.retry_after), FLOOD_CONTROL)
        except TelegramForbiddenError as exc:
            return Blocked(exc.message)
        except TelegramMigrateToChat:
            return Rejected("group chat was migrated to a supergroup")
        except TelegramBadRequest as exc:
            if _NOT_MODIFIED in exc.message:
                return Sent(None)
            return Rejected(exc.message)
        except TelegramEntityTooLarge as exc:  # before TelegramNetworkError, its base class
            return Rejected(exc.message)
        except TelegramServerError as exc:
            return RetryLater(SERVER_ERROR_BACKOFF, f"server_error: {exc.message}")
        except TelegramUnauthorizedError:
            log.error("telegram_token_rejected")
            return RetryLater(UNAUTHORIZED_BACKOFF, "unauthorized")
        # A timeout may hide a request Telegram did process; the Bot API has no idempotency key, so the retry
        # can duplicate it. Losing the message instead would be worse.
        except (TimeoutError, TelegramNetworkError, aiohttp.ClientError) as exc:
            return RetryLater(NETWORK_ERROR_BACKOFF, f"network_error: {type(exc).__name__}")
        except ClientDecodeError:  # e.g. a proxy's HTML error page instead of Bot API JSON
            return RetryLater(SERVER_ERROR_BACKOFF, "undecodable_response")
        except TelegramAPIError as exc:  # 404 Not Found, 409 Conflict, anything new: the call is wrong
            return Rejected(exc.message)
        return Sent(returned.message_id if isinstance(returned, Message) else None)

    def _log_outcome(
        self, method: str, chat_id: Any, result: SendResult, *, part: int = 0, parts: int = 1
    ) -> None:
        chat = "none" if chat_id is None else "redacted"  # a channel's "@name" isn't hashed, nor logged
        if isinstance(chat_id, int):
            chat = self._hash_id(chat_id)
        fields: dict[str, Any] = {"method": method, "chat": chat, "parts": parts}
        if isinstance(result, Sent):
            log.info("telegram_sent", **fields)
            return
        fields["reason"] = _QUOTED.sub('"…"', result.reason)
        if isinstance(result, RetryLater):
            # A chat's wait handed back is routine (once per message of a chat with a backlog) and the
            # outbox logs its outcome anyway: a line of its own only at debug level.
            emit = log.debug if result.reason == CHAT_RATE_LIMITED else log.info
            emit(
                "telegram_retry_later",
                after=result.after,
                part=part,
                resumable=bool(result.resume_with),
                **fields,
            )
        elif isinstance(result, Blocked):
            log.info("telegram_blocked", **fields)
        else:
            log.warning("telegram_rejected", **fields)


def _prepare(call: Call) -> TelegramMethod[Any] | Rejected:
    """The aiogram method object for a planned call, or why Telegram would refuse it."""
    payload = _with_uploads(call.payload)
    if isinstance(payload, Rejected):
        return payload
    try:
        return METHODS[call.method].model_validate(payload)
    except ValidationError as exc:
        # Field paths only: the error's own text would quote the offending values.
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        return Rejected(f"invalid {call.method} payload: {fields}")


# -- uploads: files the outbox stores as a recipe, made at send time ----------------------------------------


def _with_uploads(payload: dict[str, Any]) -> dict[str, Any] | Rejected:
    """The payload as aiogram should send it: a QR code's text becomes an uploaded PNG photo.

    Drawn here, on every attempt, from the text the outbox stored: the same text draws the same bytes.
    """
    if QR_PAYLOAD_FIELD not in payload:
        return payload
    if payload.get("photo") is not None:
        return Rejected("a photo can't be both a file_id and a QR code")
    data = payload[QR_PAYLOAD_FIELD]
    try:
        png = qr_png(data if isinstance(data, str) else "")
    except ValueError as exc:  # nothing to encode, or too long for any QR version
        return Rejected(f"qr code: {exc}")
    fields = {k: v for k, v in payload.items() if k != QR_PAYLOAD_FIELD}
    fields["photo"] = BufferedInputFile(png, filename=QR_FILENAME)
    return fields


# -- planning: turn one stored call into the calls that fit Telegram's limits -------------------------------
