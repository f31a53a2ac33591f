"""Callback data for inline buttons: short, id-based, and untrusted on the way back.

Telegram allows 1-64 bytes of callback data, so we put short prefixes and ids in it, never names. Anything
can arrive here (old keyboards, modified clients), so `decode` validates strictly and returns None for data
we did not produce; the worker then re-checks permissions and state for whatever the data names
(invariant 5): a decoded AdminAction says only what was pressed, not that the presser may do it.

    r:<c|b>                  role choice (customer / business)
    rg:<step>:<value>        a registration dialog answer (step letter guards against stale buttons)
    of:<step>:<value>        an offer-creation dialog answer
    oe:<step>:<value>        an offer-editing dialog answer (item, then field)
    ad:<ap|rj|su|re>:<id>    admin: approve / reject / suspend / reinstate business <id>
    om:<verb>:<id>           owner: pause / resume / sold out / restock / cancel (asks first) offer <id>

Customers (quantities `qs` are per item in position order, dot-separated: "2.0.1"):
    fd:<tab>:<cat>:<page>    browse: tab n(ear)/l(atest)/p(opular)/e(nding soon), category letter or a(ll)
    fr:<km>                  set the distance limit (km), then browse again
    ov:<offer>:<qs>          an offer's detail with the quantities picked so far (picker taps re-render)
    by:<offer>:<qs>:<nonce>  buy: hold these quantities; nonce = the rendering's id, so a double tap on one
                             rendered button is one purchase while a fresh view can buy again
    mo:<page>                my orders
    od:<verb>:<order hex>    an order: s(how) / c(ancel, asks first) / y (cancel confirmed)
    rh:<reservation hex>     release a hold before paying
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MAX_CALLBACK_BYTES = 64

_ROLE_CODES: dict[str, Literal["customer", "business"]] = {"c": "customer", "b": "business"}
_VALUE = re.compile(r"^[A-Za-z0-9_]{1,24}$")

AdminVerb = Literal["approve", "reject", "suspend", "reinstate"]
_ADMIN_CODES: dict[str, AdminVerb] = {"ap": "approve", "rj": "reject", "su": "suspend", "re": "reinstate"}


@dataclass(frozen=True)
class RoleChoice:
    role: Literal["customer", "business"]

    def encode(self) -> str:
        code = next(k for k, v in _ROLE_CODES.items() if v == self.role)
        return f"r:{code}"


@dataclass(frozen=True)
class DialogChoice:
    """An answer button inside a guided dialog: `step` is the step it was offered at."""

    dialog: Literal["rg", "of", "oe"]
    step: str
    value: str

    def encode(self) -> str:
        return f"{self.dialog}:{self.step}:{self.value}"


@dataclass(frozen=True)
class AdminAction:
    verb: AdminVerb
    business_id: int

    def encode(self) -> str:
        code = next(k for k, v in _ADMIN_CODES.items() if v == self.verb)
        return f"ad:{code}:{self.business_id}"


OfferVerb = Literal["pause", "resume", "mark_sold_out", "restock", "cancel", "cancel_confirmed", "edit"]
_OFFER_CODES: dict[str, OfferVerb] = {
    "pa": "pause",
    "re": "resume",
    "so": "mark_sold_out",
    "rs": "restock",
    "ca": "cancel",
    "cy": "cancel_confirmed",
    "ed": "edit",
}


@dataclass(frozen=True)
class OfferManage:
    verb: OfferVerb
    offer_id: int

    def encode(self) -> str:
        code = next(k for k, v in _OFFER_CODES.items() if v == self.verb)
        return f"om:{code}:{self.offer_id}"


BrowseTab = Literal["near", "latest", "popular", "ending"]
_TAB_CODES: dict[str, BrowseTab] = {"n": "near", "l": "latest", "p": "popular", "e": "ending"}
# Business categories (db.models.BUSINESS_CATEGORIES) by letter; "all" is no filter.
CATEGORY_CODES: dict[str, str] = {
    "a": "all",
    "b": "bakery",
    "r": "restaurant",
    "c": "cafe",
    "g": "grocery",
    "o": "other",
}
RADIUS_CHOICES_KM: tuple[int, ...] = (1, 3, 5, 10, 25, 50)
MAX_PAGE = 999
_QUANTITIES = re.compile(r"^\d{1,2}(\.\d{1,2}){0,9}$")
_HEX_ID = re.compile(r"^[0-9a-f]{32}$")
_NONCE = re.compile(r"^[0-9a-z]{1,12}$")


def _code_of(codes: dict[str, str], value: str) -> str:
    return next(k for k, v in codes.items() if v == value)


@dataclass(frozen=True)
class Browse:
    tab: BrowseTab = "near"
    category: str = "all"  # one of CATEGORY_CODES' values
    page: int = 0

    def encode(self) -> str:
        return (
            f"fd:{_code_of(dict(_TAB_CODES), self.tab)}:{_code_of(CATEGORY_CODES, self.category)}:{self.page}"
        )


@dataclass(frozen=True)
class SetRadius:
    km: int

    def encode(self) -> str:
        return f"fr:{self.km}"


def encode_quantities(quantities: tuple[int, ...]) -> str:
    return ".".join(str(q) for q in quantities)


@dataclass(frozen=True)
class ViewOffer:
    offer_id: int
    quantities: tuple[int, ...] = ()  # empty: not picked yet (the detail view proposes a default)

    def encode(self) -> str:
        return f"ov:{self.offer_id}:{encode_quantities(self.quantities)}"


@dataclass(frozen=True)
class BuyOffer:
    offer_id: int
    quantities: tuple[int, ...]
    nonce: str

    def encode(self) -> str:
        return f"by:{self.offer_id}:{encode_quantities(self.quantities)}:{self.nonce}"


@dataclass(frozen=True)
class MyOrders:
    page: int = 0

    def encode(self) -> str:
        return f"mo:{self.page}"


OrderVerb = Literal["show", "cancel", "cancel_confirmed"]
_ORDER_CODES: dict[str, OrderVerb] = {"s": "show", "c": "cancel", "y": "cancel_confirmed"}


@dataclass(frozen=True)
class OrderAction:
    verb: OrderVerb
    order_hex: str  # uuid.UUID(hex=...) on the worker; a hex string keeps core free of parsing errors

    def encode(self) -> str:
        return f"od:{_code_of(dict(_ORDER_CODES), self.verb)}:{self.order_hex}"


@dataclass(frozen=True)
class ReleaseHold:
    reservation_hex: str

    def encode(self) -> str:
        return f"rh:{self.reservation_hex}"


CallbackAction = (
    RoleChoice
    | DialogChoice
    | AdminAction
    | OfferManage
    | Browse
    | SetRadius
    | ViewOffer
    | BuyOffer
    | MyOrders
    | OrderAction
    | ReleaseHold
)


def _small_int(text: str, limit: int) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 6 and int(text) <= limit else None


def _offer_id(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < len(text) <= 18 and int(text) > 0 else None


def _quantities(text: str) -> tuple[int, ...] | None:
    if text == "":
        return ()
    if not _QUANTITIES.match(text):
        return None
    return tuple(int(part) for part in text.split("."))


def decode(data: str | None) -> CallbackAction | None:
    """Return the action behind callback data, or None if it is not something we issued."""
    if not data or len(data.encode("utf-8")) > MAX_CALLBACK_BYTES:
        return None
    parts = data.split(":")
    match parts:
        case ["r", code] if code in _ROLE_CODES:
            return RoleChoice(_ROLE_CODES[code])
        case ["rg" | "of" | "oe" as dialog, step, value] if (
            len(step) == 1 and step.isalpha() and _VALUE.match(value)
        ):
            return DialogChoice(dialog, step, value)
        case ["ad", code, ident] if code in _ADMIN_CODES and ident.isdigit() and 0 < len(ident) <= 18:
            return AdminAction(_ADMIN_CODES[code], int(ident))
        case ["om", code, ident] if code in _OFFER_CODES and ident.isdigit() and 0 < len(ident) <= 18:
            return OfferManage(_OFFER_CODES[code], int(ident))
        case ["fd", tab, cat, page] if tab in _TAB_CODES and cat in CATEGORY_CODES:
            number = _small_int(page, MAX_PAGE)
            return Browse(_TAB_CODES[tab], CATEGORY_CODES[cat], number) if number is not None else None
        case ["fr", km] if km.isdigit() and int(km) in RADIUS_CHOICES_KM:
            return SetRadius(int(km))
        case ["ov", ident, qs] if _offer_id(ident) and (quantities := _quantities(qs)) is not None:
            return ViewOffer(int(ident), quantities)
        case ["by", ident, qs, nonce] if (
            _offer_id(ident) and (quantities := _quantities(qs)) and _NONCE.match(nonce)
        ):
            return BuyOffer(int(ident), quantities, nonce)
        case ["mo", page] if (number := _small_int(page, MAX_PAGE)) is not None:
            return MyOrders(number)
        case ["od", code, ident] if code in _ORDER_CODES and _HEX_ID.match(ident):
            return OrderAction(_ORDER_CODES[code], ident)
        case ["rh", ident] if _HEX_ID.match(ident):
            return ReleaseHold(ident)
    return None
