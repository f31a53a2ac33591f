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


CallbackAction = RoleChoice | DialogChoice | AdminAction | OfferManage


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
    return None
