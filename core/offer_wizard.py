"""The offer-creation dialog: pure steps from (state, input) to (next state, replies).

Like core.registration: the worker stores the state (its `data` is JSONB, so money is kept as minor-unit
ints and times as ISO strings), turns each command into a `DialogInput` and calls `advance`. Every step
validates its input with the offer rules (core.offers) and re-asks with a hint when it gets something else.
The last step shows the card exactly as customers will see it, with Publish / Edit / Discard; Edit sends
the owner to one part and, once it is answered, straight back to the preview.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.callbacks import DialogChoice
from core.dialog_inputs import ButtonInput, DialogInput, PhotoInput, TextInput
from core.i18n import t
from core.messages import InlineButton, Keyboard, Reply
from core.money import InvalidAmount, Money, minor_units
from core.offer_wizard_card import (
    ItemDraft,
    OfferDraft,
    WizardContext,
    offer_card,
    tag_label,
)
from core.offer_wizard_pickup import parse_pickup_window
from core.offers import (
    DIETARY_TAGS,
    validate_description,
    validate_item,
    validate_pickup_window,
    validate_quantity,
    validate_title,
)

__all__ = [
    "DIALOG_KIND",
    "MAX_ITEMS",
    "STEPS",
    "ItemDraft",
    "OfferDraft",
    "OfferWizardState",
    "StepResult",
    "WizardContext",
    "advance",
    "draft_from_state",
    "offer_card",
    "start",
]

DIALOG_KIND = "create_offer"
MAX_ITEMS = 10
# Steps in order; the one-letter code is what buttons carry, so a button from another step is recognised.
STEPS: tuple[tuple[str, str], ...] = (
    ("photo", "p"),
    ("title", "t"),
    ("description", "d"),
    ("item_name", "n"),
    ("item_quantity", "q"),
    ("normal_price", "m"),
    ("offer_price", "o"),
    ("more_items", "a"),
    ("pickup", "w"),
    ("tags", "g"),
    ("preview", "v"),
    ("edit", "e"),
)
_CODE = dict(STEPS)
# Edit menu: the part's button value -> the step that asks for it.
EDIT_PARTS: tuple[tuple[str, str], ...] = (
    ("photo", "photo"),
    ("title", "title"),
    ("description", "description"),
    ("items", "item_name"),
    ("pickup", "pickup"),
    ("tags", "tags"),
)
_EDIT_TARGET = dict(EDIT_PARTS)


@dataclass(frozen=True)
class OfferWizardState:
    step: str = "photo"
    # JSON-serializable only (stored as JSONB): money as minor-unit ints, times as ISO strings.
    data: dict[str, Any] = field(default_factory=dict)

    def with_answer(self, next_step: str, **answers: Any) -> OfferWizardState:
        return replace(self, step=next_step, data={**self.data, **answers})


@dataclass(frozen=True)
class StepResult:
    state: OfferWizardState | None  # None: the dialog is over
    replies: tuple[Reply, ...]
    publish: OfferDraft | None = None  # the owner pressed Publish on the preview
    discarded: bool = False


def start(chat_id: int, lang: str, ctx: WizardContext) -> StepResult:
    state = OfferWizardState(data={"currency": ctx.currency, "items": [], "tags": []})
    intro = Reply(chat_id, t("offer.intro", lang, business=ctx.business_name))
    return StepResult(state, (intro, *_prompt(state, chat_id, lang, ctx)))


def advance(
    state: OfferWizardState, inp: DialogInput, chat_id: int, lang: str, ctx: WizardContext
) -> StepResult:
    """Apply one input to the dialog."""
    handler = _HANDLERS.get(state.step)
    if handler is None:  # a state stored by another version: start afresh rather than fail every message
        return start(chat_id, lang, ctx)
    if isinstance(inp, ButtonInput) and (inp.choice.dialog != "of" or inp.choice.step != _CODE[state.step]):
        return _reask(state, chat_id, lang, ctx, t("offer.hint.stale_button", lang))
    return handler(state, inp, chat_id, lang, ctx)


def draft_from_state(state: OfferWizardState, ctx: WizardContext) -> OfferDraft:
    """The offer the answers so far describe (KeyError if a part is still missing)."""
    d = state.data
    currency = _currency(state, ctx)
    return OfferDraft(
        photo_file_id=d["photo_file_id"],
        thumb_file_id=d["thumb_file_id"],
        title=d["title"],
        description=d.get("description", ""),
        items=tuple(
            ItemDraft(
                name=i["name"],
                quantity=i["quantity"],
                normal_price=Money(i["normal"], currency),
                offer_price=Money(i["offer"], currency),
            )
            for i in d["items"]
        ),
        pickup_start=datetime.fromisoformat(d["pickup_start"]),
        pickup_end=datetime.fromisoformat(d["pickup_end"]),
        tags=tuple(tag for tag in DIETARY_TAGS if tag in d.get("tags", ())),
        currency=currency,
    )


# ---- questions ---------------------------------------------------------------------------------------


def _currency(state: OfferWizardState, ctx: WizardContext) -> str:
    return str(state.data.get("currency", ctx.currency))


def _example(currency: str) -> str:
    return {0: "25000", 3: "4.500"}.get(minor_units(currency), "4.50")


def _button(lang: str, key: str, step: str, value: str, **params: object) -> InlineButton:
    return InlineButton(t(key, lang, **params), callback_data=DialogChoice("of", _CODE[step], value).encode())


def _prompt(
    state: OfferWizardState, chat_id: int, lang: str, ctx: WizardContext, hint: str | None = None
) -> tuple[Reply, ...]:
    """The question for the current step (with `hint` first when the last answer did not fit)."""
    step, d = state.step, state.data
    currency = _currency(state, ctx)
    item = d.get("item", {})
    params: dict[str, object] = {
        "number": len(d.get("items", ())) + 1,
        "name": item.get("name", ""),
        "currency": currency,
        "example": _example(currency),
        "zone": ctx.timezone,
        "count": len(d.get("items", ())),
        "max": MAX_ITEMS,
    }
    if "normal" in item:
        params["normal"] = Money(item["normal"], currency).display()
    text = t(f"offer.ask.{step}", lang, **params)
    if hint:
        text = f"{hint}\n\n{text}"
    rows: Keyboard = ()
    if step == "description":
        rows = ((_button(lang, "offer.button.skip", step, "skip"),),)
    elif step == "more_items":
        add = (_button(lang, "offer.button.add_item", step, "add"),) if len(d["items"]) < MAX_ITEMS else ()
        rows = (add, (_button(lang, "offer.button.items_done", step, "done"),))
        rows = tuple(row for row in rows if row)
    elif step == "tags":
        chosen = set(d.get("tags", ()))
        buttons = [
            InlineButton(
                ("✅ " if tag in chosen else "") + tag_label(tag, lang),
                callback_data=DialogChoice("of", _CODE[step], tag).encode(),
            )
            for tag in DIETARY_TAGS
        ]
        rows = (
            *(tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)),
            (_button(lang, "offer.button.tags_done", step, "done"),),
        )
    elif step == "preview":
        caption, photo = offer_card(draft_from_state(state, ctx), lang, ctx)
        rows = (
            (_button(lang, "offer.button.publish", step, "publish"),),
            (_button(lang, "offer.button.edit", step, "edit"),),
            (_button(lang, "offer.button.discard", step, "discard"),),
        )
        return (Reply(chat_id, caption, photo=photo), Reply(chat_id, text, inline_keyboard=rows))
    elif step == "edit":
        rows = (
            *((_button(lang, f"offer.button.edit_{part}", step, part),) for part, _ in EDIT_PARTS),
            (_button(lang, "offer.button.back_to_preview", step, "back"),),
        )
    return (Reply(chat_id, text, inline_keyboard=rows),)


def _reask(state: OfferWizardState, chat_id: int, lang: str, ctx: WizardContext, hint: str) -> StepResult:
    return StepResult(state, _prompt(state, chat_id, lang, ctx, hint=hint))


def _hints(problems: list[str], lang: str, **params: object) -> str:
    return "\n".join(t(f"offer.hint.{code}", lang, **params) for code in problems)


def _next(state: OfferWizardState, chat_id: int, lang: str, ctx: WizardContext, *pre: Reply) -> StepResult:
    return StepResult(state, (*pre, *_prompt(state, chat_id, lang, ctx)))


def _part_done(state: OfferWizardState, next_step: str, **answers: Any) -> OfferWizardState:
    """Record answers; go on to next_step, or back to the preview when the owner came here to edit."""
    if state.data.get("editing"):
        data = {key: value for key, value in {**state.data, **answers}.items() if key != "editing"}
        return replace(state, step="preview", data=data)
    return state.with_answer(next_step, **answers)


# ---- steps -------------------------------------------------------------------------------------------

_Handler = Callable[[OfferWizardState, DialogInput, int, str, WizardContext], StepResult]


def _on_photo(
    state: OfferWizardState, inp: DialogInput, chat_id: int, lang: str, ctx: WizardContext
) -> StepResult:
    if not isinstance(inp, PhotoInput):
        return _reask(state, chat_id, lang, ctx, t("offer.hint.photo_expected", lang))
    nxt = _part_done(state, "title", photo_file_id=inp.file_id, thumb_file_id=inp.thumb_file_id)
    return _next(nxt, chat_id, lang, ctx)


def _on_title(
    state: OfferWizardState, inp: DialogInput, chat_id: int, lang: str, ctx: WizardContext
) -> StepResult:
    if not isinstance(inp, TextInput):
        return _reask(state, chat_id, lang, ctx, t("offer.hint.text_expected", lang))
    problems = validate_title(inp.text)
    if problems:
        return _reask(state, chat_id, lang, ctx, _hints(problems, lang))
    return _next(_part_done(state, "description", title=" ".join(inp.text.split())), chat_id, lang, ctx)


def _on_description(
    state: OfferWizardState, inp: DialogInput, chat_id: int, lang: str, ctx: WizardContext
) -> StepResult:
    if isinstance(inp, ButtonInput) and inp.choice.value == "skip":
        return _next(_part_done(state, "item_name", description=""), chat_id, lang, ctx)
    if not isinstance(inp, TextInput):
        return _reask(state, chat_id, lang, ctx, t("offer.hint.description_expected", lang))
    problems = validate_description(inp.text)
    if problems:
        return _reask(state, chat_id, lang, ctx, _hints(problems, lang))
    return _next(_part_done(state, "item_name", description=inp.text.strip()), chat_id, lang, ctx)


def _on_item_name(
    state: OfferWizardState, inp: DialogInput, chat_id: int, lang: str, ctx: WizardContext
) -> StepResult:
    if not isinstance(inp, TextInput):
        return _reask(state, chat_id, lang, ctx, t("offer.hint.text_expected", lang))
    currency = _currency(state, ctx)
    # Only the name is known yet: check it with placeholder numbers that pass the other rules.
    problems = validate_item(inp.text, 1, Money(2, currency), Money(1, currency))
    if problems:
        return _reask(state, chat_id, lang, ctx, _hints(problems, lang))
    nxt = state.with_answer("item_quantity", item={"name": " ".join(inp.text.split())})
    return _next(nxt, chat_id, lang, ctx)


def _on_item_quantity(
    state: OfferWizardState, inp: DialogInput, chat_id: int, lang: str, ctx: WizardContext
) -> StepResult:
    typed = inp.text.strip() if isinstance(inp, TextInput) else ""
    if not (typed.isascii() and typed.isdigit() and len(typed) <= 7) or validate_quantity(int(typed)):
        return _reask(state, chat_id, lang, ctx, t("offer.hint.quantity", lang))
    nxt = state.with_answer("normal_price", item={**state.data["item"], "quantity": int(typed)})
    return _next(nxt, chat_id, lang, ctx)


def _read_price(
    state: OfferWizardState, inp: DialogInput, lang: str, ctx: WizardContext
) -> tuple[Money | None, str]:
    currency = _currency(state, ctx)
    if not isinstance(inp, TextInput):
        return None, t("offer.hint.price_expected", lang, currency=currency, example=_example(currency))
    try:
        return Money.parse(inp.text, currency), ""
    except InvalidAmount as error:
        reason = str(error.params.get("reason", "garbage"))
        key = f"offer.hint.price_{reason}"
        if key not in _PRICE_REASONS:
            key = "offer.hint.price_garbage"
        return None, t(key, lang, currency=currency, example=_example(currency))


def _on_normal_price(
    state: OfferWizardState, inp: DialogInput, chat_id: int, lang: str, ctx: WizardContext
) -> StepResult:
    price, hint = _read_price(state, inp, lang, ctx)
    if price is None:
        return _reask(state, chat_id, lang, ctx, hint)
    if price.amount_minor == 0:
        return _reask(state, chat_id, lang, ctx, t("offer.hint.normal_price_zero", lang))
    nxt = state.with_answer("offer_price", item={**state.data["item"], "normal": price.amount_minor})
    return _next(nxt, chat_id, lang, ctx)


def _on_offer_price(
    state: OfferWizardState, inp: DialogInput, chat_id: int, lang: str, ctx: WizardContext
) -> StepResult:
    price, hint = _read_price(state, inp, lang, ctx)
    if price is None:
        return _reask(state, chat_id, lang, ctx, hint)
    item = state.data["item"]
    normal = Money(item["normal"], _currency(state, ctx))
    problems = validate_item(item["name"], item["quantity"], normal, price)
    if problems:
        return _reask(state, chat_id, lang, ctx, _hints(problems, lang, normal=normal.display()))
    items = [*state.data["items"], {**item, "offer": price.amount_minor}]
    data = {key: value for key, value in state.data.items() if key != "item"}
    state = replace(state, data={**data, "items": items})
    if len(items) >= MAX_ITEMS:
        note = Reply(chat_id, t("offer.items.max_reached", lang, max=MAX_ITEMS))
        return _next(_part_done(state, "pickup"), chat_id, lang, ctx, note)
    return _next(state.with_answer("more_items"), chat_id, lang, ctx)


def _on_more_items(
    state: OfferWizardState, inp: DialogInput, chat_id: int, lang: str, ctx: WizardContext
) -> StepResult:
    value = inp.choice.value if isinstance(inp, ButtonInput) else None
    if value == "add" and len(state.data["items"]) < MAX_ITEMS:
        return _next(state.with_answer("item_name"), chat_id, lang, ctx)
    if value == "done":
        return _next(_part_done(state, "pickup"), chat_id, lang, ctx)
    return _reask(state, chat_id, lang, ctx, t("offer.hint.pick_a_button", lang))


def _on_pickup(
    state: OfferWizardState, inp: DialogInput, chat_id: int, lang: str, ctx: WizardContext
) -> StepResult:
    window = parse_pickup_window(inp.text, ctx.timezone, ctx.now) if isinstance(inp, TextInput) else None
    if window is None:
        return _reask(state, chat_id, lang, ctx, t("offer.hint.pickup_format", lang))
    problems = validate_pickup_window(window.start, window.end, ctx.now)
    if problems:
        local_now = ctx.now.astimezone(ZoneInfo(ctx.timezone))
        hint = _hints(problems, lang, now=f"{local_now:%H:%M}", zone=ctx.timezone)
        return _reask(state, chat_id, lang, ctx, hint)
    nxt = _part_done(state, "tags", pickup_start=window.start.isoformat(), pickup_end=window.end.isoformat())
    return _next(nxt, chat_id, lang, ctx)


def _on_tags(
    state: OfferWizardState, inp: DialogInput, chat_id: int, lang: str, ctx: WizardContext
) -> StepResult:
    value = inp.choice.value if isinstance(inp, ButtonInput) else None
    if value == "done":
        return _next(_part_done(state, "preview"), chat_id, lang, ctx)
    if value in DIETARY_TAGS:
        chosen = set(state.data.get("tags", ())) ^ {value}
        tags = [tag for tag in DIETARY_TAGS if tag in chosen]
        return _next(state.with_answer("tags", tags=tags), chat_id, lang, ctx)
    return _reask(state, chat_id, lang, ctx, t("offer.hint.pick_a_button", lang))


def _on_preview(
    state: OfferWizardState, inp: DialogInput, chat_id: int, lang: str, ctx: WizardContext
) -> StepResult:
    value = inp.choice.value if isinstance(inp, ButtonInput) else None
    if value == "publish":
        draft = draft_from_state(state, ctx)
        # Time has passed since the window was typed: it may be over by now.
        problems = validate_pickup_window(draft.pickup_start, draft.pickup_end, ctx.now)
        if problems:
            nxt = state.with_answer("pickup", editing=True)
            return _reask(nxt, chat_id, lang, ctx, t("offer.hint.window_passed_meanwhile", lang))
        return StepResult(None, (), publish=draft)
    if value == "edit":
        return _next(state.with_answer("edit"), chat_id, lang, ctx)
    if value == "discard":
        return StepResult(None, (Reply(chat_id, t("offer.discarded", lang)),), discarded=True)
    return _reask(state, chat_id, lang, ctx, t("offer.hint.pick_a_button", lang))


def _on_edit(
    state: OfferWizardState, inp: DialogInput, chat_id: int, lang: str, ctx: WizardContext
) -> StepResult:
    value = inp.choice.value if isinstance(inp, ButtonInput) else None
    if value == "back":
        return _next(state.with_answer("preview"), chat_id, lang, ctx)
    if value in _EDIT_TARGET:
        target = _EDIT_TARGET[value]
        answers: dict[str, Any] = {"editing": True}
        if value == "items":  # items are entered again from the first
            answers["items"] = []
        return _next(state.with_answer(target, **answers), chat_id, lang, ctx)
    return _reask(state, chat_id, lang, ctx, t("offer.hint.pick_a_button", lang))


_PRICE_REASONS = frozenset(
    {
        "offer.hint.price_garbage",
        "offer.hint.price_negative",
        "offer.hint.price_too_many_decimals",
        "offer.hint.price_fraction_not_allowed",
        "offer.hint.price_too_large",
    }
)

_HANDLERS: dict[str, _Handler] = {
    "photo": _on_photo,
    "title": _on_title,
    "description": _on_description,
    "item_name": _on_item_name,
    "item_quantity": _on_item_quantity,
    "normal_price": _on_normal_price,
    "offer_price": _on_offer_price,
    "more_items": _on_more_items,
    "pickup": _on_pickup,
    "tags": _on_tags,
    "preview": _on_preview,
    "edit": _on_edit,
}
