"""Finding food: the nearby list (tabs, categories, pages, distance limit) and an offer's detail with its
quantity picker. Pure: the worker loads rows, this module decides what the customer sees.

Two Telegram limits shape everything here: a list message must stay under 4096 characters (five cards with
capped titles and names stay far below it) and every button's callback data must stay within 64 bytes (ids
and quantities only, never names; core.callbacks checks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from core.callbacks import (
    CATEGORY_CODES,
    MAX_PAGE,
    RADIUS_CHOICES_KM,
    Browse,
    BrowseTab,
    BuyOffer,
    SetRadius,
    ViewOffer,
)
from core.i18n import t
from core.messages import InlineButton, Keyboard
from core.money import Money
from core.offer_wizard_card import WizardContext, format_window, tag_label
from core.reservations import DEFAULT_PER_ORDER_LIMIT
from core.telegram_limits import MAX_CAPTION_CHARS, MAX_TEXT_CHARS, truncate_caption, visible_length

DEFAULT_RADIUS_KM: Final = 5
PAGE_SIZE: Final = 5
TABS: Final[tuple[BrowseTab, ...]] = ("near", "latest", "popular", "ending")
CATEGORIES: Final = tuple(CATEGORY_CODES.values())  # "all" first
EARTH_RADIUS_M: Final = 6_371_008.8
# Picker limits that keep BuyOffer/ViewOffer data decodable: ≤ 10 items, ≤ 99 of one item.
MAX_PICKER_ITEMS: Final = 10
MAX_UNITS_PER_ITEM: Final = 99
# "Back to list" from an offer's detail. The detail is usually a photo, which editMessageText cannot turn
# into the list, so this press must send a new message; a page number the list never links to tells it
# apart from the list's own Near tab (which edits in place).
BACK_TO_LIST: Final = Browse(page=MAX_PAGE)
# Room left in a caption for numbers that change between renders (stock, totals): the decision "photo
# with caption" vs "text" must not flip between a detail and its picker edits (you can't edit one into
# the other).
_CAPTION_HEADROOM: Final = 48
_CARD_TITLE_CHARS: Final = 60
_CARD_NAME_CHARS: Final = 40
_BUTTON_TITLE_CHARS: Final = 28
ELLIPSIS: Final = "…"


# -- distance ---------------------------------------------------------------------------------------------


def radius_km(search_radius_m: int | None) -> int:
    """The user's distance limit in km (one of RADIUS_CHOICES_KM), the default when they never picked."""
    if search_radius_m is None:
        return DEFAULT_RADIUS_KM
    return min(RADIUS_CHOICES_KM, key=lambda km: abs(km * 1000 - search_radius_m))


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (the SQL in db.discovery_repositories computes the same)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Box:
    west: float
    south: float
    east: float
    north: float


def bounding_box(latitude: float, longitude: float, radius_m: float) -> Box:
    """A lon/lat box containing every point within `radius_m`: the index prefilter before the exact distance.

    A degree of longitude shrinks with cos(latitude), so the longitude span widens by 1/cos. Near the poles
    (and across the antimeridian, where no market of ours is) the box degrades to all longitudes.
    """
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    south, north = max(-90.0, latitude - dlat), min(90.0, latitude + dlat)
    widest = max(abs(south), abs(north))
    cos_lat = math.cos(math.radians(widest))
    if cos_lat < 0.01:
        return Box(-180.0, south, 180.0, north)
    dlon = dlat / cos_lat
    return Box(max(-180.0, longitude - dlon), south, min(180.0, longitude + dlon), north)


def format_distance(meters: float) -> str:
    """ "350 m" below a kilometre (to 10 m), "1.2 km" below ten, then whole kilometres ("12 km")."""
    if meters < 995:
        return f"{max(10, round(meters / 10) * 10)} m" if meters >= 5 else "10 m"
    if meters < 9_950:
        return f"{meters / 1000:.1f} km"
    return f"{round(meters / 1000)} km"


# -- the list ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListCard:
    """One live offer in the list: its cheapest available item stands for its price."""

    offer_id: int
    title: str
    business: str
    distance_m: float
    price: Money
    normal_price: Money
    several_prices: bool
    units_left: int
    pickup_start: datetime
    pickup_end: datetime
    timezone: str


@dataclass(frozen=True)
class ListPage:
    tab: BrowseTab
    category: str
    page: int
    total: int  # offers matching the tab's filters in all pages
    radius_km: int
    cards: tuple[ListCard, ...]


def page_count(total: int) -> int:
    return max(1, math.ceil(total / PAGE_SIZE))


def clamp_page(page: int, total: int) -> int:
    """A page that exists (stale paging buttons after offers sold out land on the last page)."""
    return max(0, min(page, page_count(total) - 1, MAX_PAGE - 1))


def render_list(page: ListPage, lang: str, now: datetime) -> tuple[str, Keyboard]:
    """The list message's HTML and its keyboard (tabs, categories, cards, paging, distance)."""
    header = t(
        "find.list.header",
        lang,
        tab=t(f"find.tab.{page.tab}", lang),
        category=t(f"find.category.{page.category}", lang),
        radius=format_distance(page.radius_km * 1000),
    )
    if page.cards:
        first = page.page * PAGE_SIZE
        body = "\n\n".join(_card_text(first + n + 1, card, lang, now) for n, card in enumerate(page.cards))
    else:
        body = t("find.list.empty", lang, radius=format_distance(page.radius_km * 1000))
    text = f"{header}\n\n{body}"
    if visible_length(text) > MAX_TEXT_CHARS:  # cannot happen with capped fields; never send a 400
        text = truncate_caption(text, MAX_TEXT_CHARS)[0]
    return text, _list_keyboard(page, lang)


def _card_text(number: int, card: ListCard, lang: str, now: datetime) -> str:
    price_key = "find.card.price_from" if card.several_prices else "find.card.price"
    return t(
        "find.card",
        lang,
        number=number,
        title=_shorten(card.title, _CARD_TITLE_CHARS),
        business=_shorten(card.business, _CARD_NAME_CHARS),
        distance=format_distance(card.distance_m),
        price=t(price_key, lang, price=card.price.display(), normal=card.normal_price.display()),
        left=card.units_left,
        window=_window(card.pickup_start, card.pickup_end, card.timezone, lang, now),
    )


def _list_keyboard(page: ListPage, lang: str) -> Keyboard:
    def mark(selected: bool, label: str) -> str:
        return f"• {label}" if selected else label

    tabs = tuple(
        InlineButton(
            mark(tab == page.tab, _label(f"find.tab.{tab}", lang)),
            callback_data=Browse(tab, page.category, 0).encode(),
        )
        for tab in TABS
    )
    categories = tuple(
        InlineButton(
            mark(category == page.category, _label(f"find.category.{category}", lang)),
            callback_data=Browse(page.tab, category, 0).encode(),
        )
        for category in CATEGORIES
    )
    first = page.page * PAGE_SIZE
    cards = tuple(
        (
            InlineButton(
                _label(
                    "find.card.open",
                    lang,
                    number=first + n + 1,
                    title=_shorten(card.title, _BUTTON_TITLE_CHARS),
                ),
                callback_data=ViewOffer(card.offer_id).encode(),
            ),
        )
        for n, card in enumerate(page.cards)
    )
    pages = page_count(page.total)
    paging: list[InlineButton] = []
    if page.page > 0:
        paging.append(
            InlineButton(
                _label("find.page.prev", lang),
                callback_data=Browse(page.tab, page.category, page.page - 1).encode(),
            )
        )
    if pages > 1:
        paging.append(
            InlineButton(
                _label("find.page.of", lang, page=page.page + 1, pages=pages),
                callback_data=Browse(page.tab, page.category, page.page).encode(),
            )
        )
    if page.page + 1 < pages:
        paging.append(
            InlineButton(
                _label("find.page.next", lang),
                callback_data=Browse(page.tab, page.category, page.page + 1).encode(),
            )
        )
    radius = tuple(
        InlineButton(mark(km == page.radius_km, f"{km} km"), callback_data=SetRadius(km).encode())
        for km in RADIUS_CHOICES_KM
    )
    rows: list[tuple[InlineButton, ...]] = [tabs, categories[:3], categories[3:], *cards]
    if paging:
        rows.append(tuple(paging))
    rows.append(radius)
    return tuple(rows)


# -- an offer's detail ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetailItem:
    name: str
    normal_price: Money
    price: Money
    available: int  # remaining plus units in lapsed holds


@dataclass(frozen=True)
class OfferDetail:
    offer_id: int
    title: str
    business: str
    address: str | None
    distance_m: float | None  # None when the customer or the venue has no pin
    description: str | None
    tags: tuple[str, ...]
    pickup_start: datetime
    pickup_end: datetime
    timezone: str
    items: tuple[DetailItem, ...]
    per_order_limit: int | None
    photo_file_id: str | None
    currency: str

    @property
    def order_limit(self) -> int:
        return min(self.per_order_limit or DEFAULT_PER_ORDER_LIMIT, MAX_PICKER_ITEMS * MAX_UNITS_PER_ITEM)

    @property
    def pickable(self) -> tuple[DetailItem, ...]:
        return self.items[:MAX_PICKER_ITEMS]


def pick_quantities(requested: tuple[int, ...], detail: OfferDetail) -> tuple[int, ...]:
    """The picker's quantities: what was asked for, clamped to stock and the per-order limit.

    Nothing asked (just opened): one of the first item that has any left. Callback data is untrusted and
    stock moves, so each quantity is cut to its item's available units, and the total to the limit by
    lowering the last items first.
    """
    items = detail.pickable
    if not requested:
        first = next((n for n, item in enumerate(items) if item.available > 0), None)
        return tuple(1 if n == first and detail.order_limit >= 1 else 0 for n in range(len(items)))
    padded = (tuple(requested) + (0,) * len(items))[: len(items)]
    clamped = [
        max(0, min(q, item.available, MAX_UNITS_PER_ITEM)) for q, item in zip(padded, items, strict=True)
    ]
    excess = sum(clamped) - detail.order_limit
    for n in reversed(range(len(clamped))):
        if excess <= 0:
            break
        cut = min(excess, clamped[n])
        clamped[n] -= cut
        excess -= cut
    return tuple(clamped)


def order_total(detail: OfferDetail, quantities: tuple[int, ...]) -> Money:
    total = Money.zero(detail.currency)
    for q, item in zip(quantities, detail.pickable, strict=False):
        total += item.price * q
    return total


def nonce_of(update_id: int) -> str:
    """The rendering's id for BuyOffer: the update that drew the buttons, base36 (≤ 12 characters)."""
    value = abs(update_id) % 36**12
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if value == 0:
            return out


@dataclass(frozen=True)
class DetailMessage:
    text: str
    keyboard: Keyboard
    photo: str | None  # sent as a photo with `text` as caption when set


def render_detail(
    detail: OfferDetail, quantities: tuple[int, ...], nonce: str, lang: str, now: datetime
) -> DetailMessage:
    """The detail with its picker. A photo offer becomes a photo with a caption, its description shortened
    to fit; only if even no description would not fit is it a text message (the decision does not depend on
    the quantities, so picker edits keep the message's kind)."""
    keyboard = _detail_keyboard(detail, quantities, nonce, lang)
    description = (detail.description or "").strip()
    if detail.photo_file_id:
        budget = MAX_CAPTION_CHARS - _CAPTION_HEADROOM
        if visible_length(_detail_text(detail, description, quantities, lang, now)) <= budget:
            return DetailMessage(
                _detail_text(detail, description, quantities, lang, now), keyboard, detail.photo_file_id
            )
        low, high = 0, len(description)
        while low < high:  # the longest description prefix that fits
            mid = (low + high + 1) // 2
            if (
                visible_length(_detail_text(detail, _shorten(description, mid), quantities, lang, now))
                <= budget
            ):
                low = mid
            else:
                high = mid - 1
        if visible_length(_detail_text(detail, _shorten(description, low), quantities, lang, now)) <= budget:
            text = _detail_text(detail, _shorten(description, low), quantities, lang, now)
            return DetailMessage(text, keyboard, detail.photo_file_id)
    return DetailMessage(_detail_text(detail, description, quantities, lang, now), keyboard, None)


def _detail_text(
    detail: OfferDetail, description: str, quantities: tuple[int, ...], lang: str, now: datetime
) -> str:
    parts = [t("find.detail.head", lang, title=detail.title, business=detail.business)]
    where = []
    if detail.address:
        where.append(t("find.detail.address", lang, address=detail.address))
    if detail.distance_m is not None:
        where.append(t("find.detail.distance", lang, distance=format_distance(detail.distance_m)))
    if where:
        parts.append("\n".join(where))
    if description:
        parts.append(t("find.detail.description", lang, description=description))
    if detail.tags:
        parts.append(t("find.detail.tags", lang, tags=", ".join(tag_label(tag, lang) for tag in detail.tags)))
    parts.append(
        t(
            "find.detail.pickup",
            lang,
            window=_window(detail.pickup_start, detail.pickup_end, detail.timezone, lang, now),
        )
    )
    parts.append("\n".join(_item_text(item, lang) for item in detail.items))
    total = sum(quantities)
    if total == 0:
        parts.append(t("find.detail.pick_some", lang))
    parts.append(t("find.detail.limit", lang, limit=detail.order_limit))
    return "\n\n".join(parts)


def _item_text(item: DetailItem, lang: str) -> str:
    key = "find.detail.item" if item.available > 0 else "find.detail.item_sold_out"
    return t(
        key,
        lang,
        name=item.name,
        price=item.price.display(),
        normal=item.normal_price.display(),
        left=item.available,
    )


def _detail_keyboard(detail: OfferDetail, quantities: tuple[int, ...], nonce: str, lang: str) -> Keyboard:
    rows: list[tuple[InlineButton, ...]] = []
    total_units = sum(quantities)
    for n, (q, item) in enumerate(zip(quantities, detail.pickable, strict=True)):
        name = _shorten(item.name, _BUTTON_TITLE_CHARS)
        row: list[InlineButton] = []
        if q > 0:  # a bound that is reached shows no button: an identical re-render is an error in Telegram
            fewer = (*quantities[:n], q - 1, *quantities[n + 1 :])
            row.append(
                InlineButton(
                    _label("find.picker.less", lang, name=name, quantity=q),
                    callback_data=ViewOffer(detail.offer_id, fewer).encode(),
                )
            )
        if q < min(item.available, MAX_UNITS_PER_ITEM) and total_units < detail.order_limit:
            more = (*quantities[:n], q + 1, *quantities[n + 1 :])
            key = "find.picker.more" if q > 0 else "find.picker.more_named"
            row.append(
                InlineButton(
                    _label(key, lang, name=name, quantity=q),
                    callback_data=ViewOffer(detail.offer_id, more).encode(),
                )
            )
        if row:
            rows.append(tuple(row))
    if total_units > 0:
        total = order_total(detail, quantities)
        rows.append(
            (
                InlineButton(
                    _label("find.buy", lang, units=total_units, total=total.display()),
                    callback_data=BuyOffer(detail.offer_id, quantities, nonce).encode(),
                ),
            )
        )
    rows.append((InlineButton(_label("find.back", lang), callback_data=BACK_TO_LIST.encode()),))
    return tuple(rows)


def back_keyboard(lang: str) -> Keyboard:
    return ((InlineButton(_label("find.back", lang), callback_data=BACK_TO_LIST.encode()),),)


# -- helpers ----------------------------------------------------------------------------------------------


def _window(start: datetime, end: datetime, timezone: str, lang: str, now: datetime) -> str:
    # The owner's preview and the customer's views show a window the same way: one formatter, which reads
    # only the zone and the clock from its context.
    return format_window(start, end, lang, WizardContext("", "XXX", timezone, now))


def _label(key: str, lang: str, **params: object) -> str:
    """A button's text (InlineButton undoes t()'s HTML escaping when it renders)."""
    return t(key, lang, **params)


def _shorten(text: str, limit: int) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + ELLIPSIS
