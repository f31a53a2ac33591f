"""The business registration dialog: pure steps from (state, input) to (next state, replies).

The worker stores the state (in the database, so the dialog survives a worker restart), turns each
command into a `DialogInput`, and calls `advance`. Every step validates its input and re-asks with a hint
when it gets something else: a photo where a name was asked, someone else's phone number, a stale button.
When the owner confirms, `advance` returns the finished `BusinessDraft` for the worker to store.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from core.callbacks import DialogChoice
from core.dialog_inputs import (
    ButtonInput,
    ContactInput,
    DialogInput,
    LocationInput,
    TextInput,
)
from core.i18n import t
from core.messages import InlineButton, Keyboard, Reply, RequestKeyboard
from core.timezones import (
    CURRENCY_CHOICES,
    KNOWN_CURRENCIES,
    TIMEZONE_CHOICES,
    suggest_currency,
    suggest_timezone,
    valid_timezone,
)

DIALOG_KIND = "register_business"
CATEGORIES: tuple[str, ...] = ("bakery", "restaurant", "cafe", "grocery", "other")
# Steps in order; the one-letter code is what buttons carry, so a button from an earlier step is recognised.
STEPS: tuple[tuple[str, str], ...] = (
    ("name", "n"),
    ("category", "c"),
    ("address", "a"),
    ("location", "l"),
    ("phone", "p"),
    ("timezone", "t"),
    ("currency", "u"),
    ("confirm", "s"),
)
_CODE = dict(STEPS)


@dataclass(frozen=True)
class RegistrationState:
    step: str = "name"
    data: dict[str, Any] = field(default_factory=dict)

    def with_answer(self, next_step: str, **answers: Any) -> RegistrationState:
        return replace(self, step=next_step, data={**self.data, **answers})


@dataclass(frozen=True)
class BusinessDraft:
    name: str
    category: str
    address: str
    latitude: float | None
    longitude: float | None
    contact_phone: str
    timezone: str
    currency: str


@dataclass(frozen=True)
class StepResult:
    state: RegistrationState | None  # None: the dialog is over
    replies: tuple[Reply, ...]
    submitted: BusinessDraft | None = None


def start(chat_id: int, lang: str) -> StepResult:
    state = RegistrationState()
    return StepResult(state, (Reply(chat_id, t("reg.intro", lang)), prompt(state, chat_id, lang)))


def _button(lang: str, key: str, step: str, value: str, **params: object) -> InlineButton:
    return InlineButton(t(key, lang, **params), callback_data=DialogChoice("rg", _CODE[step], value).encode())


def prompt(state: RegistrationState, chat_id: int, lang: str, hint: str | None = None) -> Reply:
    """The question for the current step (with `hint` first when the last answer did not fit)."""
    step = state.step
    text = t(f"reg.ask.{step}", lang)
    if hint:
        text = f"{hint}\n\n{text}"
    rows: Keyboard
    if step == "category":
        rows = tuple((_button(lang, f"category.{c}", step, c),) for c in CATEGORIES)
        return Reply(chat_id, text, inline_keyboard=rows)
    if step == "location":
        # The pin comes through the reply keyboard; skipping is an inline button on a second message.
        return Reply(chat_id, text, reply_keyboard=RequestKeyboard(t("reg.button.send_location", lang)))
    if step == "phone":
        return Reply(
            chat_id, text, reply_keyboard=RequestKeyboard(t("reg.button.share_phone", lang), "contact")
        )
    if step == "timezone":
        suggested = state.data.get("suggested_timezone")
        zones = ([suggested] if suggested in TIMEZONE_CHOICES else []) + [
            z for z in TIMEZONE_CHOICES if z != suggested
        ]
        rows = tuple(
            (InlineButton(("✅ " if z == suggested else "") + z, callback_data=_tz_data(z)),) for z in zones
        )
        return Reply(chat_id, text, inline_keyboard=rows)
    if step == "currency":
        suggested = suggest_currency(state.data.get("timezone"))
        codes = ([suggested] if suggested else []) + [c for c in CURRENCY_CHOICES if c != suggested]
        rows = tuple(
            tuple(_button(lang, "reg.button.currency", step, c, code=c) for c in codes[i : i + 3])
            for i in range(0, len(codes), 3)
        )
        return Reply(chat_id, text, inline_keyboard=rows)
    if step == "confirm":
        summary = t(
            "reg.summary",
            lang,
            name=state.data["name"],
            category=t(f"category.{state.data['category']}", lang),
            address=state.data["address"],
            pin=t("reg.pin.yes" if state.data.get("latitude") is not None else "reg.pin.no", lang),
            phone=state.data["phone"],
            timezone=state.data["timezone"],
            currency=state.data["currency"],
        )
        rows = (
            (_button(lang, "reg.button.submit", step, "yes"),),
            (_button(lang, "reg.button.restart", step, "restart"),),
        )
        return Reply(chat_id, f"{summary}\n\n{text}", inline_keyboard=rows)
    return Reply(chat_id, text)


def _tz_data(zone: str) -> str:
    return DialogChoice("rg", _CODE["timezone"], str(TIMEZONE_CHOICES.index(zone))).encode()


def advance(state: RegistrationState, inp: DialogInput, chat_id: int, lang: str) -> StepResult:
    """Apply one input to the dialog."""
    if isinstance(inp, ButtonInput) and inp.choice.step != _CODE[state.step]:
        return _reask(state, chat_id, lang, "reg.hint.stale_button")
    handler = _HANDLERS[state.step]
    return handler(state, inp, chat_id, lang)


def _reask(state: RegistrationState, chat_id: int, lang: str, hint_key: str) -> StepResult:
    return StepResult(state, (prompt(state, chat_id, lang, hint=t(hint_key, lang)),))


def _next(state: RegistrationState, chat_id: int, lang: str, *pre: Reply) -> StepResult:
    return StepResult(state, (*pre, prompt(state, chat_id, lang)))


def _on_name(state: RegistrationState, inp: DialogInput, chat_id: int, lang: str) -> StepResult:
    if not isinstance(inp, TextInput):
        return _reask(state, chat_id, lang, "reg.hint.text_expected")
    name = " ".join(inp.text.split())
    if not 2 <= len(name) <= 64:
        return _reask(state, chat_id, lang, "reg.hint.name_length")
    return _next(state.with_answer("category", name=name), chat_id, lang)


def _on_category(state: RegistrationState, inp: DialogInput, chat_id: int, lang: str) -> StepResult:
    value = inp.choice.value if isinstance(inp, ButtonInput) else None
    if isinstance(inp, TextInput):
        typed = inp.text.strip().lower().replace("é", "e")
        value = typed if typed in CATEGORIES else None
    if value not in CATEGORIES:
        return _reask(state, chat_id, lang, "reg.hint.pick_a_button")
    return _next(state.with_answer("address", category=value), chat_id, lang)


def _on_address(state: RegistrationState, inp: DialogInput, chat_id: int, lang: str) -> StepResult:
    if not isinstance(inp, TextInput):
        return _reask(state, chat_id, lang, "reg.hint.text_expected")
    address = " ".join(inp.text.split())
    if not 5 <= len(address) <= 200:
        return _reask(state, chat_id, lang, "reg.hint.address_length")
    nxt = state.with_answer("location", address=address)
    skip = Reply(
        chat_id,
        t("reg.location.skip_note", lang),
        inline_keyboard=((_button(lang, "reg.button.skip_location", "location", "skip"),),),
    )
    return StepResult(nxt, (prompt(nxt, chat_id, lang), skip))


def _on_location(state: RegistrationState, inp: DialogInput, chat_id: int, lang: str) -> StepResult:
    if isinstance(inp, LocationInput):
        zone = suggest_timezone(inp.latitude, inp.longitude)
        nxt = state.with_answer(
            "phone", latitude=inp.latitude, longitude=inp.longitude, suggested_timezone=zone
        )
        return _next(nxt, chat_id, lang)
    if isinstance(inp, ButtonInput) and inp.choice.value == "skip":
        return _next(state.with_answer("phone", latitude=None, longitude=None), chat_id, lang)
    return _reask(state, chat_id, lang, "reg.hint.location_expected")


def _on_phone(state: RegistrationState, inp: DialogInput, chat_id: int, lang: str) -> StepResult:
    if isinstance(inp, ContactInput):
        if not inp.is_own:
            return _reask(state, chat_id, lang, "reg.hint.own_phone")
        nxt = state.with_answer("timezone", phone=inp.phone_number)
        thanks = Reply(chat_id, t("reg.phone.saved", lang), remove_reply_keyboard=True)
        return _next(nxt, chat_id, lang, thanks)
    return _reask(state, chat_id, lang, "reg.hint.phone_expected")


def _on_timezone(state: RegistrationState, inp: DialogInput, chat_id: int, lang: str) -> StepResult:
    zone: str | None = None
    if isinstance(inp, ButtonInput) and inp.choice.value.isdigit():
        index = int(inp.choice.value)
        zone = TIMEZONE_CHOICES[index] if index < len(TIMEZONE_CHOICES) else None
    elif isinstance(inp, TextInput):
        zone = valid_timezone(inp.text)
    if zone is None:
        return _reask(state, chat_id, lang, "reg.hint.timezone")
    return _next(state.with_answer("currency", timezone=zone), chat_id, lang)


def _on_currency(state: RegistrationState, inp: DialogInput, chat_id: int, lang: str) -> StepResult:
    code: str | None = None
    if isinstance(inp, ButtonInput):
        code = inp.choice.value
    elif isinstance(inp, TextInput):
        code = inp.text.strip().upper()
    if code not in KNOWN_CURRENCIES:
        return _reask(state, chat_id, lang, "reg.hint.currency")
    return _next(state.with_answer("confirm", currency=code), chat_id, lang)


def _on_confirm(state: RegistrationState, inp: DialogInput, chat_id: int, lang: str) -> StepResult:
    if isinstance(inp, ButtonInput) and inp.choice.value == "restart":
        return _next(RegistrationState(), chat_id, lang, Reply(chat_id, t("reg.restarted", lang)))
    if isinstance(inp, ButtonInput) and inp.choice.value == "yes":
        d = state.data
        draft = BusinessDraft(
            name=d["name"],
            category=d["category"],
            address=d["address"],
            latitude=d.get("latitude"),
            longitude=d.get("longitude"),
            contact_phone=d["phone"],
            timezone=d["timezone"],
            currency=d["currency"],
        )
        return StepResult(None, (Reply(chat_id, t("reg.submitted", lang, name=draft.name)),), submitted=draft)
    return _reask(state, chat_id, lang, "reg.hint.pick_a_button")


_HANDLERS = {
    "name": _on_name,
    "category": _on_category,
    "address": _on_address,
    "location": _on_location,
    "phone": _on_phone,
    "timezone": _on_timezone,
    "currency": _on_currency,
    "confirm": _on_confirm,
}
