"""The offer-creation dialog, step by step: each step takes its kind of answer, re-asks on anything else."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from core.callbacks import DialogChoice, decode
from core.dialog_inputs import ButtonInput, DialogInput, OtherInput, PhotoInput, TextInput
from core.messages import Reply
from core.money import Money
from core.offer_wizard import (
    STEPS,
    ItemDraft,
    OfferDraft,
    OfferWizardState,
    StepResult,
    WizardContext,
    advance,
    draft_from_state,
    offer_card,
    start,
)
from core.offer_wizard_pickup import parse_pickup_window
from core.offers import DIETARY_TAGS
from core.telegram_limits import visible_length

CHAT = 42
# Monday 2 June 2025, 14:00 in Singapore.
NOW = datetime(2025, 6, 2, 6, 0, tzinfo=UTC)
CTX = WizardContext(business_name="Bob's Bakery", currency="SGD", timezone="Asia/Singapore", now=NOW)
CODE = dict(STEPS)

ONE_ITEM = {"name": "Croissant", "quantity": 5, "normal": 450, "offer": 200}
FILLED: dict[str, Any] = {
    "currency": "SGD",
    "photo_file_id": "PHOTO",
    "thumb_file_id": "THUMB",
    "title": "Pastry bag",
    "description": "Fresh today",
    "items": [ONE_ITEM],
    "pickup_start": "2025-06-02T10:00:00+00:00",
    "pickup_end": "2025-06-02T13:00:00+00:00",
    "tags": ["vegetarian"],
}
# The answers each step records, in step order.
_ANSWERS: dict[str, list[str]] = {
    "photo": ["photo_file_id", "thumb_file_id"],
    "title": ["title"],
    "description": ["description"],
    "item_name": [],
    "item_quantity": [],
    "normal_price": [],
    "offer_price": ["items"],
    "more_items": [],
    "pickup": ["pickup_start", "pickup_end"],
    "tags": ["tags"],
    "preview": [],
    "edit": [],
}
_ORDER = list(_ANSWERS)


def at(step: str, ctx: WizardContext = CTX) -> OfferWizardState:
    """A state at `step` with every earlier answer filled in."""
    data: dict[str, Any] = {"currency": ctx.currency, "items": [], "tags": []}
    for earlier in _ORDER[: _ORDER.index(step)]:
        data.update({key: FILLED[key] for key in _ANSWERS[earlier]})
    partial = {"item_quantity": ["name"], "normal_price": ["name", "quantity"]}
    partial["offer_price"] = ["name", "quantity", "normal"]
    if step in partial:
        data["item"] = {key: ONE_ITEM[key] for key in partial[step]}
    return OfferWizardState(step=step, data=data)


def button(step: str, value: str) -> ButtonInput:
    return ButtonInput(DialogChoice("of", CODE[step], value))


def run(
    state: OfferWizardState, inputs: list[DialogInput], ctx: WizardContext = CTX
) -> tuple[StepResult, list[StepResult]]:
    results: list[StepResult] = []
    for inp in inputs:
        assert state is not None
        result = advance(state, inp, CHAT, "en", ctx)
        results.append(result)
        if result.state is not None:
            json.dumps(result.state.data)  # JSONB-safe after every step
            state = result.state
    return results[-1], results


def buttons_of(replies: tuple[Reply, ...]) -> list[str]:
    return [b.callback_data or "" for r in replies for row in r.inline_keyboard for b in row]


HAPPY: list[DialogInput] = [
    PhotoInput("PHOTO", "THUMB"),
    TextInput("  Surprise   pastry bag "),
    TextInput("Mixed pastries from today's bake."),
    TextInput("Croissant"),
    TextInput("6"),
    TextInput("4.50"),
    TextInput("S$2"),
    button("more_items", "add"),
    TextInput("Sourdough loaf"),
    TextInput(" 2 "),
    TextInput("9"),
    TextInput("4.5"),
    button("more_items", "done"),
    TextInput("18:00-21:00"),
    button("tags", "vegetarian"),
    button("tags", "halal"),
    button("tags", "vegetarian"),
    button("tags", "dairy_free"),
    button("tags", "done"),
]


def test_happy_path_from_start_to_publish_with_two_items() -> None:
    first = start(CHAT, "en", CTX)
    assert first.state == OfferWizardState(data={"currency": "SGD", "items": [], "tags": []})
    assert "photo" in first.replies[-1].text
    last, results = run(first.state, [*HAPPY, button("preview", "publish")])
    preview = results[-2]
    assert preview.state is not None and preview.state.step == "preview"
    assert preview.replies[0].photo == "PHOTO"
    assert "Publish" in str(preview.replies[-1].inline_keyboard)
    assert last == StepResult(
        None,
        (),
        publish=OfferDraft(
            photo_file_id="PHOTO",
            thumb_file_id="THUMB",
            title="Surprise pastry bag",
            description="Mixed pastries from today's bake.",
            items=(
                ItemDraft("Croissant", 6, Money(450, "SGD"), Money(200, "SGD")),
                ItemDraft("Sourdough loaf", 2, Money(900, "SGD"), Money(450, "SGD")),
            ),
            # 18:00-21:00 in Singapore (UTC+8)
            pickup_start=datetime(2025, 6, 2, 10, 0, tzinfo=UTC),
            pickup_end=datetime(2025, 6, 2, 13, 0, tzinfo=UTC),
            tags=("halal", "dairy_free"),
            currency="SGD",
        ),
    )


def test_the_preview_card_shows_what_customers_see() -> None:
    _, results = run(start(CHAT, "en", CTX).state or OfferWizardState(), HAPPY)
    caption = results[-1].replies[0].text
    assert caption.startswith("<b>Surprise pastry bag</b>\n🏪 Bob's Bakery")
    assert "• Croissant: <s>SGD 4.50</s> → <b>SGD 2.00</b> (−55%), 6 available" in caption
    assert "<s>SGD 9.00</s> → <b>SGD 4.50</b> (−50%), 2 available" in caption
    assert "Today 18:00–21:00 (Asia/Singapore)" in caption
    assert "Halal, Dairy-free" in caption
    assert caption.endswith("Mixed pastries from today's bake.")


def test_tomorrow_window_is_converted_and_shown_as_tomorrow() -> None:
    result = advance(at("pickup"), TextInput("tomorrow 8:00-10:30"), CHAT, "en", CTX)
    assert result.state is not None
    assert result.state.data["pickup_start"] == "2025-06-03T00:00:00+00:00"
    assert result.state.data["pickup_end"] == "2025-06-03T02:30:00+00:00"
    preview = advance(result.state, button("tags", "done"), CHAT, "en", CTX)
    assert "Tomorrow 08:00–10:30 (Asia/Singapore)" in preview.replies[0].text


@pytest.mark.parametrize(
    ("typed", "start_local", "end_local"),
    [
        ("18:00-21:00", (2, 18, 0), (2, 21, 0)),
        ("18.00 - 21.00", (2, 18, 0), (2, 21, 0)),
        ("6pm-9pm", (2, 18, 0), (2, 21, 0)),
        ("6-9pm", (2, 18, 0), (2, 21, 0)),
        ("Tomorrow 8:00 – 10:30", (3, 8, 0), (3, 10, 30)),
        ("tmr 7am to 12pm", (3, 7, 0), (3, 12, 0)),
        ("2025-06-03 08:00-09:00", (3, 8, 0), (3, 9, 0)),
        ("3/6 08:00-09:00", (3, 8, 0), (3, 9, 0)),
    ],
)
def test_pickup_windows_are_read_in_the_venue_timezone(
    typed: str, start_local: tuple[int, int, int], end_local: tuple[int, int, int]
) -> None:
    window = parse_pickup_window(typed, "Asia/Singapore", NOW)
    assert window is not None
    day, hour, minute = start_local
    assert window.start == datetime(2025, 6, day, hour, minute, tzinfo=UTC) - _SGT
    day, hour, minute = end_local
    assert window.end == datetime(2025, 6, day, hour, minute, tzinfo=UTC) - _SGT


_SGT = datetime(2025, 1, 1, 8, tzinfo=UTC) - datetime(2025, 1, 1, tzinfo=UTC)


WRONG_ANSWERS: list[tuple[str, DialogInput, str]] = [
    ("photo", TextInput("here is my food"), "send a photo of the food"),
    ("photo", OtherInput("document"), "send a photo of the food"),
    ("title", TextInput("   "), "can't be empty"),
    ("title", TextInput("x" * 81), "at most 80 characters"),
    ("title", PhotoInput("P", "T"), "text message"),
    ("description", TextInput("x" * 501), "at most 500 characters"),
    ("description", OtherInput("sticker"), '"Skip"'),
    ("item_name", TextInput(""), "can't be empty"),
    ("item_name", TextInput("y" * 65), "at most 64 characters"),
    ("item_quantity", TextInput("ten"), "whole number from 1 to 1000"),
    ("item_quantity", TextInput("0"), "whole number from 1 to 1000"),
    ("item_quantity", TextInput("1001"), "whole number from 1 to 1000"),
    ("item_quantity", TextInput("-3"), "whole number from 1 to 1000"),
    ("normal_price", TextInput("abc"), "couldn't read that as a price"),
    ("normal_price", TextInput("-4.50"), "can't be negative"),
    ("normal_price", TextInput("4.5055"), "Too many decimals"),
    ("normal_price", TextInput("0"), "more than 0"),
    ("normal_price", TextInput("99999999999"), "too large"),
    ("offer_price", TextInput("4.50"), "lower than the normal price (SGD 4.50)"),
    ("offer_price", TextInput("5"), "lower than the normal price (SGD 4.50)"),
    ("offer_price", TextInput("0"), "more than 0"),
    ("offer_price", TextInput("cheap"), "e.g. 4.50"),
    ("more_items", TextInput("done"), "tap one of the buttons"),
    ("pickup", TextInput("10:00-12:00"), "already over today"),
    ("pickup", TextInput("2025-06-04 18:00-21:00"), "within 48 hours"),
    ("pickup", TextInput("21:00-18:00"), "end time must be after the start"),
    ("pickup", TextInput("after lunch"), "couldn't read that window"),
    ("pickup", TextInput("25:00-26:00"), "couldn't read that window"),
    ("pickup", TextInput("08:00-15:00"), "start time has already passed"),
    ("pickup", button("tags", "vegan"), "earlier question"),
    ("tags", TextInput("vegan"), "tap one of the buttons"),
    ("tags", button("tags", "keto"), "tap one of the buttons"),
    ("tags", button("more_items", "done"), "earlier question"),
    ("preview", TextInput("publish"), "tap one of the buttons"),
    ("preview", button("tags", "vegan"), "earlier question"),
    ("edit", button("edit", "prices"), "tap one of the buttons"),
]


@pytest.mark.parametrize(("step", "answer", "hint"), WRONG_ANSWERS)
def test_a_wrong_answer_keeps_the_step_and_says_what_is_expected(
    step: str, answer: DialogInput, hint: str
) -> None:
    state = at(step)
    result = advance(state, answer, CHAT, "en", CTX)
    assert result.state == state
    assert hint in result.replies[-1].text


def test_every_step_has_a_wrong_answer_test() -> None:
    assert {step for step, _, _ in WRONG_ANSWERS} == set(CODE)


@pytest.mark.parametrize(
    ("currency", "normal", "offer", "normal_minor", "offer_minor", "bad", "hint"),
    [
        ("VND", "50.000", "25000", 50000, 25000, "25000.50", "whole numbers"),
        ("JPY", "¥1,200", "500", 1200, 500, "500.00", "whole numbers"),
    ],
)
def test_zero_decimal_currency_prices(
    currency: str, normal: str, offer: str, normal_minor: int, offer_minor: int, bad: str, hint: str
) -> None:
    ctx = replace(CTX, currency=currency)
    state = at("normal_price", ctx)
    refused = advance(state, TextInput(bad), CHAT, "en", ctx)
    assert refused.state == state and hint in refused.replies[-1].text and "25000" in refused.replies[-1].text
    last, _ = run(state, [TextInput(normal), TextInput(offer)], ctx)
    assert last.state is not None and last.state.data["items"][-1]["normal"] == normal_minor
    assert last.state.data["items"][-1]["offer"] == offer_minor
    ask_offer = advance(state, TextInput(normal), CHAT, "en", ctx).replies[-1].text
    assert f"{currency} {normal_minor:,}" in ask_offer


def test_at_most_ten_items_then_straight_to_the_pickup_window() -> None:
    state = replace(at("item_name"), data={**at("item_name").data, "items": [ONE_ITEM] * 9})
    last, _ = run(state, [TextInput("Bun"), TextInput("1"), TextInput("2"), TextInput("1")])
    assert last.state is not None and last.state.step == "pickup"
    assert len(last.state.data["items"]) == 10
    assert "10 items" in last.replies[0].text


@pytest.mark.parametrize(
    ("part", "answers", "check"),
    [
        ("photo", [PhotoInput("NEW", "NEWT")], ("photo_file_id", "NEW")),
        ("title", [TextInput("Bread rescue")], ("title", "Bread rescue")),
        ("description", [button("description", "skip")], ("description", "")),
        (
            "items",
            [
                TextInput("Bagel"),
                TextInput("3"),
                TextInput("3"),
                TextInput("1"),
                button("more_items", "done"),
            ],
            ("items", [{"name": "Bagel", "quantity": 3, "normal": 300, "offer": 100}]),
        ),
        ("pickup", [TextInput("19:00-20:00")], ("pickup_start", "2025-06-02T11:00:00+00:00")),
        ("tags", [button("tags", "vegan"), button("tags", "done")], ("tags", ["vegetarian", "vegan"])),
    ],
)
def test_edit_from_the_preview_returns_to_the_preview(
    part: str, answers: list[DialogInput], check: tuple[str, object]
) -> None:
    last, results = run(at("preview"), [button("preview", "edit"), button("edit", part), *answers])
    assert results[0].state is not None and results[0].state.step == "edit"
    assert last.state is not None and last.state.step == "preview"
    assert "editing" not in last.state.data
    key, value = check
    assert last.state.data[key] == value
    assert last.replies[0].photo is not None  # the refreshed card


def test_back_from_the_edit_menu_shows_the_preview_again() -> None:
    last, _ = run(at("preview"), [button("preview", "edit"), button("edit", "back")])
    assert last.state == at("preview")


def test_discard_ends_the_dialog() -> None:
    result = advance(at("preview"), button("preview", "discard"), CHAT, "en", CTX)
    assert result.state is None and result.discarded and result.publish is None
    assert "discarded" in result.replies[0].text


def test_publishing_a_window_that_ended_meanwhile_asks_for_a_new_one() -> None:
    later = replace(CTX, now=datetime(2025, 6, 2, 14, 0, tzinfo=UTC))
    result = advance(at("preview"), button("preview", "publish"), CHAT, "en", later)
    assert result.state is not None and result.state.step == "pickup" and result.publish is None
    back, _ = run(result.state, [TextInput("tomorrow 18:00-21:00")], later)
    assert back.state is not None and back.state.step == "preview"


def test_caption_fits_with_a_long_description_and_ten_items() -> None:
    draft = OfferDraft(
        photo_file_id="P",
        thumb_file_id="T",
        title="T" * 80,
        description="Lorem ipsum dolor sit amet. " * 18,  # 500 characters
        items=tuple(
            ItemDraft(f"Chocolate almond croissant no. {n}", 20, Money(1250, "SGD"), Money(450, "SGD"))
            for n in range(10)
        ),
        pickup_start=datetime(2025, 6, 2, 10, tzinfo=UTC),
        pickup_end=datetime(2025, 6, 2, 13, tzinfo=UTC),
        tags=DIETARY_TAGS,
        currency="SGD",
    )
    caption, photo = offer_card(replace(draft, description=draft.description[:500]), "en", CTX)
    assert photo == "P"
    assert visible_length(caption) <= 1024
    assert "Chocolate almond croissant no. 9" in caption  # items kept whole
    assert "Lorem ipsum" in caption and caption.endswith("…")  # the description shortened
    worst = replace(
        draft,
        items=tuple(
            ItemDraft("W" * 64, 1000, Money(1_000_000_000, "SGD"), Money(99, "SGD")) for _ in draft.items
        ),
        description="<&>" * 166,
    )
    caption, _ = offer_card(replace(worst, title="<" * 80), "en", replace(CTX, business_name="&" * 64))
    assert visible_length(caption) <= 1024


def test_short_caption_is_not_shortened() -> None:
    draft = draft_from_state(at("preview"), CTX)
    caption, _ = offer_card(draft, "en", CTX)
    assert "Fresh today" in caption and "…" not in caption


def test_every_button_the_dialog_offers_decodes_and_fits_telegram() -> None:
    seen = 0
    for step in CODE:
        state = at(step)
        replies = advance(state, OtherInput("sticker"), CHAT, "en", CTX).replies
        for data in buttons_of(replies):
            seen += 1
            assert len(data.encode()) <= 64
            decoded = decode(data)
            assert isinstance(decoded, DialogChoice) and decoded.dialog == "of"
            assert decoded.step == CODE[step]
    assert seen >= 20


def test_data_stays_json_serializable_through_edits_and_start() -> None:
    started = start(CHAT, "en", CTX).state
    assert started is not None
    json.dumps(started.data)
    _, results = run(at("preview"), [button("preview", "edit"), button("edit", "items")])
    for result in results:
        assert result.state is not None
        json.dumps(result.state.data)


def test_unknown_stored_step_starts_afresh() -> None:
    result = advance(OfferWizardState(step="gone"), TextInput("hi"), CHAT, "en", CTX)
    assert result.state == start(CHAT, "en", CTX).state
