"""The offer as customers see it: the finished draft's types and its photo caption.

The caption must fit Telegram's 1024 characters: the description is shortened first, then item names,
and only then is the caption cut at the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from core.i18n import t
from core.money import Money, discount_percent
from core.telegram_limits import MAX_CAPTION_CHARS, truncate_caption, visible_length

ELLIPSIS = "…"


@dataclass(frozen=True)
class WizardContext:
    """What the worker knows about the business, given to every step."""

    business_name: str
    currency: str  # ISO code of the business
    timezone: str  # IANA zone of the venue: pickup times are typed and shown in it
    now: datetime  # tz-aware UTC


@dataclass(frozen=True)
class ItemDraft:
    name: str
    quantity: int
    normal_price: Money
    offer_price: Money


@dataclass(frozen=True)
class OfferDraft:
    photo_file_id: str
    thumb_file_id: str
    title: str
    description: str
    items: tuple[ItemDraft, ...]
    pickup_start: datetime  # tz-aware UTC
    pickup_end: datetime  # tz-aware UTC
    tags: tuple[str, ...]
    currency: str


def format_window(start: datetime, end: datetime, lang: str, ctx: WizardContext) -> str:
    """ "Today 18:00–21:00 (Asia/Singapore)" in the venue's timezone, relative to ctx.now."""
    zone = ZoneInfo(ctx.timezone)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    today = ctx.now.astimezone(zone).date()
    text = f"{_day_label(local_start, today, lang)} {local_start:%H:%M}–"
    if local_end.date() != local_start.date():
        text += f"{_day_label(local_end, today, lang)} "
    text += f"{local_end:%H:%M}"
    abbreviation = local_start.tzname() or ""
    # zoneinfo gives "+08" for zones without a common abbreviation: the zone name says more.
    return f"{text} ({abbreviation if abbreviation.isalpha() else ctx.timezone})"


def _day_label(moment: datetime, today: date, lang: str) -> str:
    days = (moment.date() - today).days
    if days == 0:
        return t("offer.day.today", lang)
    if days == 1:
        return t("offer.day.tomorrow", lang)
    return f"{moment:%a %d %b}"


def tag_label(tag: str, lang: str) -> str:
    return t(f"offer.tag.{tag}", lang)


def offer_card(draft: OfferDraft, lang: str, ctx: WizardContext) -> tuple[str, str]:
    """(caption HTML, photo file_id): exactly what customers will see."""

    def build(description: str, name_of: Callable[[str], str]) -> str:
        parts = [t("offer.card.head", lang, title=draft.title, business=ctx.business_name)]
        parts.append("\n".join(_item_line(item, name_of(item.name), lang) for item in draft.items))
        parts.append(
            t(
                "offer.card.pickup",
                lang,
                window=format_window(draft.pickup_start, draft.pickup_end, lang, ctx),
            )
        )
        if draft.tags:
            labels = ", ".join(tag_label(tag, lang) for tag in draft.tags)
            parts.append(t("offer.card.tags", lang, tags=labels))
        if description:
            parts.append(t("offer.card.description", lang, description=description))
        return "\n\n".join(parts)

    def fits(caption: str) -> bool:
        return visible_length(caption) <= MAX_CAPTION_CHARS

    def same(name: str) -> str:
        return name

    caption = build(draft.description, same)
    if fits(caption):
        return caption, draft.photo_file_id
    # Longest description prefix that fits (binary search: the length only grows with the prefix).
    low, high = 0, len(draft.description)
    while low < high:
        mid = (low + high + 1) // 2
        if fits(build(_shorten(draft.description, mid), same)):
            low = mid
        else:
            high = mid - 1
    if low >= 20:
        return build(_shorten(draft.description, low), same), draft.photo_file_id
    for limit in (40, 32, 24, 16, 8):
        caption = build("", _shortener(limit))
        if fits(caption):
            return caption, draft.photo_file_id
    return truncate_caption(caption)[0], draft.photo_file_id


def _shortener(limit: int) -> Callable[[str], str]:
    return lambda text: _shorten(text, limit)


def _shorten(text: str, limit: int) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + ELLIPSIS


def _item_line(item: ItemDraft, name: str, lang: str) -> str:
    percent = discount_percent(item.normal_price, item.offer_price)
    return t(
        "offer.card.item" if percent else "offer.card.item_no_percent",
        lang,
        name=name,
        quantity=item.quantity,
        normal=item.normal_price.display(),
        offer=item.offer_price.display(),
        percent=percent,
    )
