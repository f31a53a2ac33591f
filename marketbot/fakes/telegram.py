"""A faithful local stand-in for the Telegram Bot API HTTP server, for tests and the local sandbox.

Telegram cannot be reached from our machines, and mocking aiogram would hide exactly the mistakes that break
in production (wrong parameter encoding, callback_data over 64 bytes, unescaped markup, ignored 429s, a
webhook handler that answers 500). So production code keeps its real aiogram client and only its base URL
points here: ``Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))``.

The fake speaks Telegram's wire format (``POST /bot<token>/<method>``, ``{"ok": ..., "result": ...}``), keeps
chats and messages so edits behave, enforces Telegram's validation and flood limits with Telegram's error
texts, and plays Telegram's other role too: simulated users produce updates that are delivered by webhook
(with retries, in order) or queued for getUpdates. Tests assert on the recorded calls.

Deviations from Telegram, on purpose: plain ``http://`` webhook URLs are accepted (local receivers have no
TLS), one simulated bot answers for every well-formed token, and only the methods MarketBot uses exist.

Run ``python -m marketbot.fakes.telegram --port 8081`` for a standalone server.
"""

from __future__ import annotations

import argparse
import copy
import logging
import random
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from types import FrameType
from typing import Any

from aiohttp import web

from marketbot.fakes.telegram_methods import canonical_method
from marketbot.fakes.telegram_sandbox import install_sandbox_routes
from marketbot.fakes.telegram_server import FakeTelegramServer
from marketbot.fakes.telegram_state import InjectedFailure, RecordedCall, UploadedFile
from marketbot.fakes.telegram_wire import auto_entities

__all__ = ["FakeTelegram", "RecordedCall", "UploadedFile", "main"]

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class FakeTelegram(FakeTelegramServer):
    """The fake Bot API server plus the simulated Telegram users; see the module docstring."""

    # -- assertions -----------------------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        """Snapshot of recorded calls, optionally only one method (case-insensitive)."""
        with self._state.lock:
            calls = list(self._state.calls)
        if method is None:
            return calls
        wanted = method.lower()
        return [call for call in calls if call.method.lower() == wanted]

    def wait_for_calls(
        self,
        method: str,
        count: int = 1,
        timeout: float = 10.0,
        predicate: Callable[[RecordedCall], bool] | None = None,
    ) -> list[RecordedCall]:
        """Wait until ``count`` successful calls of ``method`` (matching ``predicate``) were answered."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [
                call
                for call in self.calls(method)
                if call.status == 200 and (predicate is None or predicate(call))
            ]
            if len(matching) >= count:
                return matching
            if time.monotonic() >= deadline:
                seen = [
                    f"{call.method}:{call.status}"
                    + (f" ({call.response.get('description')})" if call.status != 200 else "")
                    for call in self.calls()
                ]
                raise AssertionError(
                    f"expected {count} successful {method} call(s) within {timeout}s, "
                    f"found {len(matching)}; calls seen: {seen}"
                )
            time.sleep(0.02)

    def bot_messages(self, user_id: int, *, after: int = 0) -> list[dict[str, Any]]:
        """The bot's messages in a private chat with message_id > ``after``, oldest first (as now stored)."""
        with self._state.lock:
            ids = sorted(i for i in self._state.bot_message_ids.get(user_id, set()) if i > after)
            found = (self._state.message(user_id, i) for i in ids)
            return [copy.deepcopy(m) for m in found if m is not None]

    def uploaded_file(self, file_id: str) -> UploadedFile:
        """The upload behind any file_id of a photo the bot uploaded (KeyError if it wasn't one)."""
        with self._state.lock:
            return self._state.uploads[file_id]

    def _install_extra_routes(self, app: web.Application) -> None:
        install_sandbox_routes(app, self)

    def clear_calls(self) -> None:
        with self._state.lock:
            self._state.calls.clear()

    # -- fault injection ------------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        status: int,
        times: int = 1,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with this error, in Telegram's error shape."""
        if status == 429:
            retry_after = 1 if retry_after is None else retry_after
            description = description or f"Too Many Requests: retry after {retry_after}"
        description = description or _DEFAULT_DESCRIPTIONS.get(status, "Internal Server Error")
        name = canonical_method(method) or method
        with self._state.lock:
            queue = self._state.failures.setdefault(name, deque())
            queue.extend(InjectedFailure(status, description, retry_after) for _ in range(times))

    def block_user(self, user_id: int) -> None:
        """From now on, sending to this user answers 403 "bot was blocked by the user"."""
        with self._state.lock:
            self._state.blocked.add(user_id)

    def unblock_user(self, user_id: int) -> None:
        with self._state.lock:
            self._state.blocked.discard(user_id)

    # -- Telegram's side: simulated users -------------------------------------------------------------------

    def _user(
        self, user_id: int, first_name: str, username: str | None, language_code: str | None
    ) -> dict[str, Any]:
        username = username or self._state.users.get(user_id, {}).get("username")
        return self._state.remember_user(user_id, first_name, username, language_code)

    def _user_message(self, user: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(user["id"])
        message = {
            "message_id": self._state.next_message_id(chat_id),
            "from": user,
            "chat": self._state.chat(chat_id),
            "date": self._state.now(),
            **content,
        }
        self._state.store_message(message, from_bot=False)
        return message

    def send_user_message(
        self,
        user_id: int,
        text: str,
        *,
        first_name: str = "Test",
        username: str | None = None,
        language_code: str = "en",
    ) -> dict[str, Any]:
        """A user writes ``text`` to the bot; returns the Update (commands get a bot_command entity)."""
        content: dict[str, Any] = {"text": text}
        entities = auto_entities(text)
        if entities:
            content["entities"] = entities
        with self._state.lock:
            user = self._user(user_id, first_name, username, language_code)
            update = self._state.enqueue({"message": self._user_message(user, content)})
            return copy.deepcopy(update)

    def send_location(
        self,
        user_id: int,
        latitude: float,
        longitude: float,
        *,
        first_name: str = "Test",
        username: str | None = None,
        language_code: str = "en",
        horizontal_accuracy: float | None = None,
    ) -> dict[str, Any]:
        """A user shares a location with the bot; returns the Update."""
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        if horizontal_accuracy is not None:
            location["horizontal_accuracy"] = horizontal_accuracy
        with self._state.lock:
            user = self._user(user_id, first_name, username, language_code)
            update = self._state.enqueue({"message": self._user_message(user, {"location": location})})
            return copy.deepcopy(update)

    def send_user_photo(
        self, user_id: int, *, caption: str | None = None, first_name: str = "Test", language_code: str = "en"
    ) -> dict[str, Any]:
        """A user sends a photo; like Telegram, the Update lists it in several sizes, smallest first."""
        token = f"{random.getrandbits(48):012x}"
        sizes = [
            {
                "file_id": f"AgAC{token}-{w}",
                "file_unique_id": f"AQAD{token}{w}",
                "width": w,
                "height": w * 3 // 4,
                "file_size": w * 60,
            }
            for w in (90, 320, 800, 1280)
        ]
        content: dict[str, Any] = {"photo": sizes}
        if caption:
            content["caption"] = caption
        with self._state.lock:
            user = self._user(user_id, first_name, None, language_code)
            update = self._state.enqueue({"message": self._user_message(user, content)})
            return copy.deepcopy(update)

    def send_contact(
        self,
        user_id: int,
        phone_number: str,
        *,
        own: bool = True,
        first_name: str = "Test",
        language_code: str = "en",
    ) -> dict[str, Any]:
        """A user shares a contact: their own (the request_contact button) or someone else's card."""
        with self._state.lock:
            user = self._user(user_id, first_name, None, language_code)
            contact: dict[str, Any] = {
                "phone_number": phone_number,
                "first_name": first_name if own else "Someone",
                "user_id": user_id if own else user_id + 1,
            }
            update = self._state.enqueue({"message": self._user_message(user, {"contact": contact})})
            return copy.deepcopy(update)

    def send_callback(
        self,
        user_id: int,
        data: str,
        *,
        message_id: int | None = None,
        first_name: str = "Test",
        language_code: str = "en",
    ) -> dict[str, Any]:
        """A user presses an inline button with ``data`` on a bot message; returns the Update.

        The attached message is the stored bot message ``message_id`` (default: the latest bot message in
        the chat), or a minimal valid message when the fake does not know it.
        """
        with self._state.lock:
            user = self._user(user_id, first_name, None, language_code)
            state = self._state
            found = (
                state.message(user_id, message_id)
                if message_id is not None
                else state.latest_bot_message(user_id)
            )
            if found is None:
                found = {
                    "message_id": message_id
                    if message_id is not None
                    else state.last_message_id.get(user_id, 1),
                    "from": state.bot_user(),
                    "chat": state.chat(user_id),
                    "date": state.now(),
                }
            query = {
                "id": str(random.getrandbits(62)),
                "from": user,
                "message": copy.deepcopy(found),
                "chat_instance": state.chat_instance(user_id),
                "data": data,
            }
            return copy.deepcopy(state.enqueue({"callback_query": query}))

    def send_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Deliver a raw update as given (``update_id`` is added only when missing)."""
        with self._state.lock:
            return copy.deepcopy(self._state.enqueue(copy.deepcopy(update)))


def main(argv: list[str] | None = None) -> int:
    """Run the fake in the foreground until Ctrl-C or SIGTERM; prints the base URL on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m marketbot.fakes.telegram", description="Fake Telegram Bot API server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--bot-username", default="marketbot_test_bot")
    parser.add_argument("--verbose", action="store_true", help="log each call's method and status")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _on_signal)
    fake = FakeTelegram(host=args.host, port=args.port, bot_username=args.bot_username)
    try:
        fake.start()
        print(fake.base_url, flush=True)
        print("fake Telegram Bot API running; Ctrl-C to stop", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:  # e.g. the port is taken
        print(exc, file=sys.stderr)
        return 1
    finally:
        fake.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
