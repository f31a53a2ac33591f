"""What the bot says back, as pure rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.callbacks import RoleChoice, decode
from core.commands import (
    Actor,
    CancelDialog,
    ChooseRole,
    InvalidCallback,
    SendText,
    ShareLocation,
    ShowHelp,
    SlowDown,
    StartBot,
    UnknownCommand,
    UnsupportedInput,
    dump_command,
    parse_command,
)
from core.conversation import UserView, respond

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ACTOR = Actor(telegram_user_id=8_000_000_001, chat_id=8_000_000_001, first_name="Ana", language_code="en")
USER = UserView(telegram_user_id=8_000_000_001, chat_id=8_000_000_001, language="en", first_name="Ana")
BASE = {"update_id": 1, "actor": ACTOR, "received_at": NOW, "correlation_id": "tg-1"}


def test_start_offers_the_two_roles_as_inline_buttons() -> None:
    decision = respond(StartBot(**BASE), USER)

    (reply,) = decision.replies
    method, payload = reply.to_bot_api()
    assert method == "sendMessage"
    assert "Welcome to MarketBot, Ana!" in payload["text"]
    buttons = [b for row in payload["reply_markup"]["inline_keyboard"] for b in row]
    assert [decode(b["callback_data"]) for b in buttons] == [RoleChoice("customer"), RoleChoice("business")]
    assert payload["parse_mode"] == "HTML"


def test_user_names_are_escaped_so_they_cannot_inject_html() -> None:
    user = UserView(1, 1, "en", first_name="<b>x</b>&")
    (reply,) = respond(StartBot(**BASE), user).replies
    assert "&lt;b&gt;x&lt;/b&gt;&amp;" in reply.text
    assert "<b>x</b>" not in reply.text


def test_help_lists_the_commands() -> None:
    (reply,) = respond(ShowHelp(**BASE), USER).replies
    for command in ("/start", "/help", "/cancel"):
        assert command in reply.text


def test_unknown_text_gets_a_friendly_hint() -> None:
    (reply,) = respond(SendText(**BASE, text="hello?"), USER).replies
    assert "/start" in reply.text and "/help" in reply.text


def test_unknown_command_is_named_back_to_the_user() -> None:
    (reply,) = respond(UnknownCommand(**BASE, command="/frobnicate"), USER).replies
    assert "/frobnicate" in reply.text


def test_choosing_to_find_food_asks_for_location_and_remembers_the_role() -> None:
    decision = respond(ChooseRole(**BASE, role="customer"), USER)
    _, payload = decision.replies[0].to_bot_api()
    assert decision.set_role == "customer"
    assert payload["reply_markup"]["keyboard"][0][0]["request_location"] is True


def test_choosing_to_sell_remembers_the_role() -> None:
    assert respond(ChooseRole(**BASE, role="business"), USER).set_role == "business"


def test_shared_location_is_stored_and_the_location_keyboard_removed() -> None:
    decision = respond(ShareLocation(**BASE, latitude=1.29, longitude=103.85), USER)
    _, payload = decision.replies[0].to_bot_api()
    assert decision.set_location == (1.29, 103.85)
    assert payload["reply_markup"] == {"remove_keyboard": True}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (CancelDialog(**BASE), "nothing to cancel"),
        (UnsupportedInput(**BASE, content_type="sticker"), "can't use that"),
        (InvalidCallback(**BASE), "expired"),
        (SlowDown(**BASE), "little fast"),
    ],
)
def test_every_other_input_gets_a_clear_answer(command: object, expected: str) -> None:
    (reply,) = respond(command, USER).replies  # type: ignore[arg-type]
    assert expected in reply.text


def test_commands_round_trip_through_json() -> None:
    command = ChooseRole(**BASE, role="business", callback_query_id="42", message_id=7)
    assert parse_command(dump_command(command)) == command


def test_malformed_command_json_is_rejected() -> None:
    with pytest.raises(ValueError):
        parse_command('{"kind": "choose_role", "role": "admin"}')
