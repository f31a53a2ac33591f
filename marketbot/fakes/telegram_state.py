"""Everything the fake Telegram server remembers, behind one lock.

The HTTP server runs on its own thread and event loop while tests inspect and drive it from theirs, so all
mutable state lives here and is only touched while holding ``FakeTelegramState.lock``. Nothing in this module
does I/O; the server module turns HTTP requests into calls on this state.

The fake simulates a single bot: every well-formed token addresses the same chats, update queue and webhook.
The bot's numeric id is taken from the token (as Telegram's tokens start with the bot id).
"""

from __future__ import annotations

import math
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ApiError",
    "FakeTelegramState",
    "QueuedUpdate",
    "RecordedCall",
    "UploadedFile",
    "WebhookConfig",
    "bad_request",
]

DEFAULT_BOT_ID = 123456
DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
# Telegram stores an uploaded photo in sizes that fit these boxes (s, m, x, y, w), never larger than sent.
_PHOTO_BOXES = (90, 320, 800, 1280, 2560)
ALL_UPDATE_TYPES = DEFAULT_UPDATE_TYPES | {"chat_member", "message_reaction", "message_reaction_count"}


@dataclass
class RecordedCall:
    """One Bot API request the fake received, with what it answered (for test assertions)."""

    method: str
    token: str
    params: dict[str, Any]
    status: int
    response: dict[str, Any]
    at: float


@dataclass
class UploadedFile:
    """A file sent as a multipart part; replaces ``attach://name`` references in recorded params."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)


class ApiError(Exception):
    """An error answer in Telegram's shape; raised anywhere in request handling."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(description: str) -> ApiError:
    """400 with Telegram's "Bad Request: " prefix."""
    return ApiError(400, f"Bad Request: {description}")


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


@dataclass
class QueuedUpdate:
    """An update waiting for getUpdates or webhook delivery; ``update_id`` orders and confirms it."""

    update_id: int
    kind: str
    payload: dict[str, Any]


@dataclass
class WebhookConfig:
    """What setWebhook registered, plus the delivery status getWebhookInfo reports."""

    url: str
    token: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class InjectedFailure:
    status: int
    description: str
    retry_after: int | None


class SlidingWindow:
    """Send timestamps per key, to reproduce Telegram's flood limits (only accepted calls are counted)."""

    def __init__(self) -> None:
        self._events: dict[Any, deque[float]] = {}

    def retry_after(self, key: Any, limit: tuple[int, float], now: float) -> int | None:
        """Seconds until another call fits (ceil, >= 1), or None when the call is allowed now."""
        count, window = limit
        events = self._events.get(key)
        if not events:
            return None
        while events and events[0] <= now - window:
            events.popleft()
        if len(events) < count:
            return None
        return max(1, math.ceil(events[len(events) - count] + window - now))

    def add(self, key: Any, now: float) -> None:
        self._events.setdefault(key, deque()).append(now)


class FakeTelegramState:
    """The fake's memory: users, chats and messages, the update queue, webhook, injected faults, call log."""

    def __init__(
        self, *, bot_username: str, per_chat_limit: tuple[int, float], global_limit: tuple[int, float]
    ) -> None:
        self.lock = threading.RLock()
        self.bot_username = bot_username
        self.per_chat_limit = per_chat_limit
        self.global_limit = global_limit
        self.bot_id = DEFAULT_BOT_ID
        self.calls: list[RecordedCall] = []
        self.users: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[int, dict[str, Any]]] = {}
        self.bot_message_ids: dict[int, set[int]] = {}
        self.last_message_id: dict[int, int] = {}
        self.updates: list[QueuedUpdate] = []
        self.next_update_id = random.randint(100_000_000, 900_000_000)
        self.webhook: WebhookConfig | None = None
        self.allowed_updates: list[str] | None = None
        self.blocked: set[int] = set()
        self.failures: dict[str, deque[InjectedFailure]] = {}
        self.callback_queries: dict[str, bool] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.photos: dict[str, list[dict[str, Any]]] = {}
        self.uploads: dict[str, UploadedFile] = {}  # every file_id of an uploaded photo -> what was sent
        self.poll_generation = 0
        self.per_chat_window = SlidingWindow()
        self.global_window = SlidingWindow()
        self._chat_instance_salt = random.getrandbits(48)
        self.on_change: Callable[[], None] | None = None

    # -- notifications -------------------------------------------------------------------------------------

    def changed(self) -> None:
        """Wake the server loop (webhook sender, long polls) after the queue or webhook changed."""
        callback = self.on_change
        if callback is not None:
            callback()

    # -- identities ----------------------------------------------------------------------------------------

    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "MarketBot Test",
            "username": self.bot_username,
        }

    def remember_user(
        self, user_id: int, first_name: str, username: str | None, language_code: str | None
    ) -> dict[str, Any]:
        """Store a simulated user's profile and return the ``from`` object Telegram would send."""
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self.users[user_id] = user
        return dict(user)

    def chat(self, chat_id: int) -> dict[str, Any]:
        """The ``chat`` object for a chat id: private chat with a known (or unknown) user, or a group."""
        if chat_id < 0:
            kind = "supergroup" if str(chat_id).startswith("-100") else "group"
            return {"id": chat_id, "type": kind, "title": "Group"}
        user = self.users.get(chat_id, {})
        chat: dict[str, Any] = {
            "id": chat_id,
            "type": "private",
            "first_name": user.get("first_name", "User"),
        }
        if user.get("username"):
            chat["username"] = user["username"]
        return chat

    def chat_instance(self, chat_id: int) -> str:
        """Stable per-chat opaque id, like Telegram's ``chat_instance`` (a signed 64-bit number)."""
        value = (chat_id * 0x9E3779B97F4A7C15 ^ self._chat_instance_salt) & 0xFFFFFFFFFFFFFFFF
        return str(value - (1 << 64) if value >= 1 << 63 else value)

    # -- messages ------------------------------------------------------------------------------------------

    def next_message_id(self, chat_id: int) -> int:
        """Message ids are a per-chat sequence shared by the user's and the bot's messages."""
        self.last_message_id[chat_id] = self.last_message_id.get(chat_id, 0) + 1
        return self.last_message_id[chat_id]

    def store_message(self, message: dict[str, Any], *, from_bot: bool) -> None:
        chat_id = int(message["chat"]["id"])
        self.messages.setdefault(chat_id, {})[int(message["message_id"])] = message
        if from_bot:
            self.bot_message_ids.setdefault(chat_id, set()).add(int(message["message_id"]))

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        return self.messages.get(chat_id, {}).get(message_id)

    def is_bot_message(self, chat_id: int, message_id: int) -> bool:
        return message_id in self.bot_message_ids.get(chat_id, set())

    def latest_bot_message(self, chat_id: int) -> dict[str, Any] | None:
        ids = self.bot_message_ids.get(chat_id)
        if not ids:
            return None
        for message_id in sorted(ids, reverse=True):
            found = self.message(chat_id, message_id)
            if found is not None:
                return found
        return None

    def delete_message(self, chat_id: int, message_id: int) -> bool:
        removed = self.messages.get(chat_id, {}).pop(message_id, None)
        self.bot_message_ids.get(chat_id, set()).discard(message_id)
        return removed is not None

    # -- updates -------------------------------------------------------------------------------------------

    def allowed_types(self) -> frozenset[str]:
        return frozenset(self.allowed_updates) if self.allowed_updates else DEFAULT_UPDATE_TYPES

    def enqueue(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update (assigning ``update_id`` if absent) and wake delivery; returns the update."""
        if "update_id" not in update:
            update = {"update_id": self.next_update_id, **update}
        uid = update["update_id"]
        if isinstance(uid, int) and not isinstance(uid, bool):
            self.next_update_id = max(self.next_update_id, uid + 1)
        else:
            uid = self.next_update_id
            self.next_update_id += 1
        kind = next((key for key in update if key != "update_id"), "")
        query = update.get("callback_query")
        if isinstance(query, dict) and isinstance(query.get("id"), str):
            self.callback_queries.setdefault(query["id"], False)
        if kind in self.allowed_types() or kind not in ALL_UPDATE_TYPES:
            self.updates.append(QueuedUpdate(uid, kind, update))
        self.changed()
        return update

    def confirm(self, offset: int) -> None:
        """getUpdates ``offset``: forget updates below it; negative keeps only the last ``-offset``."""
        if offset < 0:
            del self.updates[: max(0, len(self.updates) + offset)]
        elif offset:
            self.updates = [u for u in self.updates if u.update_id >= offset]

    def pending(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` queued updates of allowed types (others are dropped, as Telegram may do)."""
        allowed = self.allowed_types()
        self.updates = [u for u in self.updates if u.kind in allowed or u.kind not in ALL_UPDATE_TYPES]
        return [u.payload for u in self.updates[:limit]]

    def drop_pending(self) -> None:
        self.updates.clear()

    # -- faults and limits ---------------------------------------------------------------------------------

    def pop_failure(self, method: str) -> InjectedFailure | None:
        queue = self.failures.get(method)
        if not queue:
            return None
        failure = queue.popleft()
        if not queue:
            del self.failures[method]
        return failure

    def check_flood(self, chat_id: Any, now: float) -> None:
        """Raise 429 when one more send to ``chat_id`` would exceed the per-chat or global window."""
        waits = [
            self.per_chat_window.retry_after(chat_id, self.per_chat_limit, now),
            self.global_window.retry_after(None, self.global_limit, now),
        ]
        retry = max((w for w in waits if w is not None), default=None)
        if retry is not None:
            raise too_many_requests(retry)

    def count_send(self, chat_id: Any, now: float) -> None:
        self.per_chat_window.add(chat_id, now)
        self.global_window.add(None, now)

    # -- files ---------------------------------------------------------------------------------------------

    def photo_sizes(self, reference: str | None, size_hint: int) -> list[dict[str, Any]]:
        """Three PhotoSize objects; a file_id the fake issued before maps back to the same sizes."""
        if reference and reference in self.photos:
            return [dict(p) for p in self.photos[reference]]
        unique = secrets.token_urlsafe(9)
        sizes: list[dict[str, Any]] = []
        for index, (width, height) in enumerate(((90, 67), (320, 240), (800, 600))):
            sizes.append(
                {
                    "file_id": f"AgACAgIAAxkDAAI{secrets.token_urlsafe(48)}",
                    "file_unique_id": f"AQAD{unique}{index}",
                    "width": width,
                    "height": height,
                    "file_size": max(1, size_hint * (index + 1) // 3)
                    if size_hint
                    else 1200 * (index + 1) ** 3,
                }
            )
        for size in sizes:
            self.photos[size["file_id"]] = sizes
        if reference:
            self.photos[reference] = sizes
        return [dict(p) for p in sizes]

    def uploaded_photo_sizes(self, upload: UploadedFile, width: int, height: int) -> list[dict[str, Any]]:
        """The PhotoSize list Telegram makes of an uploaded photo: thumbnails that fit 90, 320, 800, 1280 and
        2560 px boxes, up to and including the original size; the upload is kept under each new file_id."""
        unique = secrets.token_urlsafe(9)
        sizes: list[dict[str, Any]] = []
        for index, box in enumerate(_PHOTO_BOXES):
            scale = min(1.0, box / max(width, height))
            w, h = max(1, round(width * scale)), max(1, round(height * scale))
            sizes.append(
                {
                    "file_id": f"AgACAgIAAxkDAAI{secrets.token_urlsafe(48)}",
                    "file_unique_id": f"AQAD{unique}{index}",
                    "width": w,
                    "height": h,
                    "file_size": max(1, upload.size * w * h // (width * height)),
                }
            )
            if scale == 1.0:
                break
        for size in sizes:
            self.photos[size["file_id"]] = sizes
            self.uploads[size["file_id"]] = upload
        return [dict(p) for p in sizes]

    @staticmethod
    def now() -> int:
        return int(time.time())
