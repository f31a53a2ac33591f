"""A person's conversation with the bot through the Telegram stand-in, for end-to-end tests."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.conftest import Stack


class Chat:
    """One person's conversation with the bot through the Telegram stand-in."""

    def __init__(self, stack: Stack, user_id: int, first_name: str = "Test") -> None:
        self.stack = stack
        self.user_id = user_id
        self.first_name = first_name
        self.seen = len(self._messages())

    def _messages(self) -> list[dict[str, Any]]:
        """Messages and photos the bot sent this person, in order; a photo's caption stands as its text."""
        return [
            {**c.params, "text": c.params.get("text") or c.params.get("caption") or ""}
            for c in self.stack.telegram.calls()
            if c.method in ("sendMessage", "sendPhoto")
            and c.status == 200
            and c.params.get("chat_id") == self.user_id
        ]

    def expect(self, fragment: str, timeout: float = 20.0) -> dict[str, Any]:
        """Wait for a new bot message containing `fragment`; earlier new messages are skipped over."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fresh = self._messages()[self.seen :]
            for index, params in enumerate(fresh):
                if fragment in params["text"]:
                    self.seen += index + 1
                    return params
            time.sleep(0.05)
        raise AssertionError(
            f"no message with {fragment!r}; got {[m['text'][:60] for m in self._messages()[self.seen :]]}"
        )

    def say(self, text: str) -> None:
        self.stack.telegram.send_user_message(self.user_id, text, first_name=self.first_name)

    def press(self, data: str) -> None:
        self.stack.telegram.send_callback(self.user_id, data, first_name=self.first_name)


def buttons(params: dict[str, Any]) -> list[str]:
    return [b.get("callback_data", "") for row in params["reply_markup"]["inline_keyboard"] for b in row]


def button(params: dict[str, Any], label: str) -> str:
    """The callback data of the button whose text contains `label`."""
    for row in params["reply_markup"]["inline_keyboard"]:
        for b in row:
            if label in b["text"]:
                return str(b["callback_data"])
    raise AssertionError(f"no button {label!r} in {params['reply_markup']}")


def register_verified_business(stack: Stack, owner: Chat, admin: Chat, name: str) -> int:
    """Walk the registration dialog with good answers and have the admin approve; return the business id."""
    owner.press("r:b")
    owner.expect("What is your business called?")
    owner.say(name)
    owner.expect("What kind of business")
    owner.press("rg:c:bakery")
    owner.expect("pickup address")
    owner.say("12 Baker Street, Singapore 049315")
    owner.expect("Send the venue's location")
    stack.telegram.send_location(owner.user_id, 1.2834, 103.8607)
    owner.expect("Share a contact phone number")
    stack.telegram.send_contact(owner.user_id, "+6591234567", own=True)
    owner.expect("Which timezone")
    owner.say("Asia/Singapore")
    owner.expect("Which currency")
    owner.press("rg:u:SGD")
    owner.expect("Is everything right?")
    owner.press("rg:s:yes")
    card = admin.expect(name)
    approve = next(d for d in buttons(card) if d.startswith("ad:ap:"))
    admin.press(approve)
    owner.expect("is verified!")
    return int(approve.rsplit(":", 1)[1])
