"""Callback data for inline buttons: short, id-based, and untrusted on the way back.

Telegram allows 1-64 bytes of callback data, so we put short prefixes and ids in it, never names. Anything
can arrive here (old keyboards, modified clients), so `decode` validates strictly and returns None for data
we did not produce; the worker then re-checks permissions for whatever the data names (invariant 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MAX_CALLBACK_BYTES = 64

_ROLE_CODES: dict[str, Literal["customer", "business"]] = {"c": "customer", "b": "business"}


@dataclass(frozen=True)
class RoleChoice:
    role: Literal["customer", "business"]

    def encode(self) -> str:
        code = next(k for k, v in _ROLE_CODES.items() if v == self.role)
        return f"r:{code}"


CallbackAction = RoleChoice


def decode(data: str | None) -> CallbackAction | None:
    """Return the action behind callback data, or None if it is not something we issued."""
    if not data or len(data.encode("utf-8")) > MAX_CALLBACK_BYTES:
        return None
    prefix, _, rest = data.partition(":")
    if prefix == "r" and rest in _ROLE_CODES:
        return RoleChoice(_ROLE_CODES[rest])
    return None
