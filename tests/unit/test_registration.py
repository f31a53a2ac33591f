"""The registration dialog, step by step: each step takes its kind of answer and re-asks on anything else."""

from __future__ import annotations

import pytest

from core.callbacks import DialogChoice, decode
from core.dialog_inputs import ButtonInput, ContactInput, DialogInput, LocationInput, OtherInput, TextInput
from core.registration import RegistrationState, advance, start
from core.timezones import TIMEZONE_CHOICES, suggest_currency, suggest_timezone, valid_timezone

CHAT = 42
FILLED = {
    "name": "Bob's Bakery",
    "category": "bakery",
    "address": "12 Baker Street",
    "latitude": 1.28,
    "longitude": 103.86,
    "phone": "+6591234567",
    "timezone": "Asia/Singapore",
    "currency": "SGD",
}


def at(step: str) -> RegistrationState:
    order = ["name", "category", "address", "location", "phone", "timezone", "currency", "confirm"]
    keys = {"location": ["latitude", "longitude"]}
    data: dict[str, object] = {}
    for earlier in order[: order.index(step)]:
        for key in keys.get(earlier, [earlier]):
            data[key] = FILLED[key]
    return RegistrationState(step=step, data=data)


def button(step_code: str, value: str) -> ButtonInput:
    return ButtonInput(DialogChoice("rg", step_code, value))


def test_starting_introduces_and_asks_for_the_name() -> None:
    result = start(CHAT, "en")
    assert result.state == RegistrationState()
    assert "What is your business called?" in result.replies[-1].text


GOOD_ANSWERS: list[tuple[str, DialogInput, str]] = [
    ("name", TextInput("  Bob's   Bakery "), "category"),
    ("category", button("c", "bakery"), "address"),
    ("address", TextInput("12 Baker Street"), "location"),
    ("location", LocationInput(1.28, 103.86), "phone"),
    ("location", button("l", "skip"), "phone"),
    ("phone", ContactInput("+6591234567", is_own=True), "timezone"),
    ("timezone", button("t", "0"), "currency"),
    ("timezone", TextInput("asia/bangkok"), "currency"),
    ("currency", button("u", "SGD"), "confirm"),
    ("currency", TextInput(" myr "), "confirm"),
]


@pytest.mark.parametrize(("step", "answer", "next_step"), GOOD_ANSWERS)
def test_a_good_answer_moves_to_the_next_step(step: str, answer: DialogInput, next_step: str) -> None:
    result = advance(at(step), answer, CHAT, "en")
    assert result.state is not None and result.state.step == next_step


WRONG_ANSWERS: list[tuple[str, DialogInput, str]] = [
    ("name", OtherInput("photo"), "Please answer with a text message."),
    ("name", TextInput("B"), "2 to 64 characters"),
    ("name", TextInput("x" * 65), "2 to 64 characters"),
    ("category", TextInput("spaceship"), "Please tap one of the buttons."),
    ("category", button("c", "casino"), "Please tap one of the buttons."),
    ("address", TextInput("here"), "5 to 200 characters"),
    ("address", LocationInput(1.0, 103.0), "Please answer with a text message."),
    ("location", TextInput("near the MRT"), "send the location with the button"),
    ("phone", TextInput("+6591234567"), "Share my phone number"),
    ("phone", ContactInput("+6598765432", is_own=False), "your own number"),
    ("timezone", TextInput("Mars/Olympus_Mons"), "I don't know that timezone"),
    ("timezone", button("t", "99"), "I don't know that timezone"),
    ("currency", TextInput("doubloons"), "I don't know that currency"),
    ("confirm", TextInput("yes"), "Please tap one of the buttons."),
    ("confirm", button("c", "cafe"), "earlier question"),
]


@pytest.mark.parametrize(("step", "answer", "hint"), WRONG_ANSWERS)
def test_a_wrong_answer_keeps_the_step_and_says_what_is_expected(
    step: str, answer: DialogInput, hint: str
) -> None:
    state = at(step)
    result = advance(state, answer, CHAT, "en")
    assert result.state == state
    assert hint in result.replies[-1].text


def test_confirming_submits_the_business_and_ends_the_dialog() -> None:
    result = advance(at("confirm"), button("s", "yes"), CHAT, "en")
    assert result.state is None and result.submitted is not None
    assert (result.submitted.name, result.submitted.currency, result.submitted.timezone) == (
        "Bob's Bakery",
        "SGD",
        "Asia/Singapore",
    )


def test_start_over_clears_every_answer() -> None:
    result = advance(at("confirm"), button("s", "restart"), CHAT, "en")
    assert result.state == RegistrationState()


def test_every_button_the_dialog_offers_decodes_and_fits_telegram() -> None:
    for step in ("category", "timezone", "currency", "confirm"):
        state = at(step)
        reply = advance(state, OtherInput("sticker"), CHAT, "en").replies[-1]
        _, payload = reply.to_bot_api()
        for row in payload["reply_markup"]["inline_keyboard"]:
            for b in row:
                assert len(b["callback_data"].encode()) <= 64
                assert isinstance(decode(b["callback_data"]), DialogChoice)


def test_timezone_and_currency_are_suggested_from_the_pin() -> None:
    assert suggest_timezone(1.2834, 103.8607) == "Asia/Singapore"
    assert suggest_timezone(13.75, 100.5) == "Asia/Bangkok"
    assert suggest_timezone(-6.2, 106.8) == "Asia/Jakarta"
    assert suggest_timezone(48.85, 2.35) is None
    assert suggest_currency("Asia/Bangkok") == "THB"
    assert valid_timezone("ASIA/SINGAPORE") == "Asia/Singapore"
    assert valid_timezone("../etc/passwd") is None
    assert all(valid_timezone(z) == z for z in TIMEZONE_CHOICES)
