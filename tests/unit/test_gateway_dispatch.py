"""The gateway's dispatcher runs its filters on the event loop and still produces the same commands.

aiogram runs plain-function filters (magic filters) through a thread; bot_gateway.dispatch calls them inline.
Every kind of update the routers classify goes through both an untouched aiogram dispatcher and ours: the
commands must be identical, and ours must never hand work to a thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import Update

from bot_gateway.dispatch import build_dispatcher, run_sync_filters_inline
from bot_gateway.routers import build_routers
from marketbot.harness import text_update

USER = 7_000_000_123
BOT = Bot("123456:TEST-token")


def _message(content: dict[str, Any], *, chat_type: str = "private", sender: bool = True) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": 5,
        "date": 1_700_000_000,
        "chat": {"id": USER if chat_type == "private" else -100123, "type": chat_type, "first_name": "Ana"},
        **content,
    }
    if sender:
        message["from"] = {
            "id": USER,
            "is_bot": False,
            "first_name": "Ana",
            "username": "ana",
            "language_code": "en",
        }
    return {"update_id": 900_001, "message": message}


def _callback(data: str | None) -> dict[str, Any]:
    query: dict[str, Any] = {
        "id": "cbq-1",
        "from": {"id": USER, "is_bot": False, "first_name": "Ana"},
        "chat_instance": "1",
        "message": {
            "message_id": 9,
            "date": 1_700_000_000,
            "chat": {"id": USER, "type": "private"},
            "text": "x",
        },
    }
    if data is not None:
        query["data"] = data
    return {"update_id": 900_002, "callback_query": query}


UPDATES: dict[str, dict[str, Any]] = {
    "start": text_update(USER, "/start", update_id=1),
    "start with a parameter": text_update(USER, "/start shop_42", update_id=2),
    "start with a bad parameter": text_update(USER, "/start no spaces! allowed", update_id=3),
    "help": text_update(USER, "/help", update_id=4),
    "cancel": text_update(USER, "/cancel", update_id=5),
    "redeem": text_update(USER, "/redeem ABC123", update_id=6),
    "stats": text_update(USER, "/stats", update_id=7),
    "unknown command": text_update(USER, "/frobnicate now", update_id=8),
    "text": text_update(USER, "two loaves please", update_id=9),
    "photo": _message(
        {
            "photo": [
                {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90},
                {"file_id": "mid", "file_unique_id": "m", "width": 320, "height": 320},
                {"file_id": "big", "file_unique_id": "b", "width": 1280, "height": 1280},
            ]
        }
    ),
    "location": _message({"location": {"latitude": 1.29, "longitude": 103.85}}),
    "own contact": _message(
        {"contact": {"phone_number": "+6590000000", "first_name": "Ana", "user_id": USER}}
    ),
    "sticker": _message(
        {
            "sticker": {
                "file_id": "st",
                "file_unique_id": "st",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        }
    ),
    "group text": _message({"text": "hello group"}, chat_type="group"),
    "no sender": _message({"text": "from a channel"}, sender=False),
    "role button": _callback("r:c"),
    "forged button": _callback("admin:verify:1"),
    "button without data": _callback(None),
}


def _plain_aiogram() -> Dispatcher:
    dispatcher = Dispatcher(disable_fsm=True)
    dispatcher.include_routers(*build_routers())
    return dispatcher


async def _classify(dispatcher: Dispatcher, raw: dict[str, Any]) -> Any:
    result = await dispatcher.feed_update(BOT, Update.model_validate(raw, context={"bot": BOT}))
    if result is UNHANDLED or result is None:
        return "ignored"
    return result.model_dump(exclude={"received_at"})


@pytest.mark.parametrize("name", list(UPDATES))
def test_every_update_is_classified_as_plain_aiogram_classifies_it_without_a_thread(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = asyncio.run(_classify(_plain_aiogram(), UPDATES[name]))
    ours = build_dispatcher()

    def no_threads(*_: Any, **__: Any) -> Any:
        raise AssertionError("a filter or handler was sent to a thread")

    monkeypatch.setattr(asyncio, "to_thread", no_threads)
    assert asyncio.run(_classify(ours, UPDATES[name])) == expected


def test_the_samples_cover_ignored_updates_and_commands() -> None:
    outcomes = {name: asyncio.run(_classify(build_dispatcher(), raw)) for name, raw in UPDATES.items()}
    assert outcomes["group text"] == outcomes["no sender"] == "ignored"
    assert outcomes["start with a parameter"]["start_parameter"] == "shop_42"
    assert outcomes["start with a bad parameter"]["start_parameter"] is None
    assert outcomes["photo"]["thumb_file_id"] == "mid"
    assert outcomes["role button"]["kind"] == "choose_role"
    assert outcomes["forged button"]["kind"] == "invalid_callback"
    assert outcomes["sticker"]["kind"] == "unsupported"


def test_only_synchronous_filters_are_changed_and_only_once() -> None:
    dispatcher = _plain_aiogram()
    changed = run_sync_filters_inline(dispatcher.chain_tail)
    # Two root filters on private messages and five magic filters on message handlers.
    assert changed == 7
    assert run_sync_filters_inline(dispatcher.chain_tail) == 0
