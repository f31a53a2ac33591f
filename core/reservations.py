"""Rules for holding units while a customer pays. The database applies them atomically (db.reservations).

A hold lasts HOLD_MINUTES by default; Stripe Checkout sessions must live at least 30 minutes, so the
session's expiry is the later of the two and the worker expires the session when the hold is released.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.errors import DomainError

HOLD_MINUTES = 15
DEFAULT_PER_ORDER_LIMIT = 10


class SoldOut(DomainError):
    """Fewer units are left than asked for (someone was faster)."""

    code = "sold_out"


class OfferNotOnSale(DomainError):
    """The offer is paused, cancelled, sold out or its pickup window has ended."""

    code = "offer_not_on_sale"


class InvalidQuantity(DomainError):
    code = "invalid_quantity"


@dataclass(frozen=True)
class Line:
    offer_item_id: int
    quantity: int


def validate_lines(lines: list[Line], *, per_order_limit: int | None) -> list[Line]:
    """Merge duplicate items, drop nothing silently, and enforce 1..limit units in total."""
    merged: dict[int, int] = {}
    for line in lines:
        if line.quantity <= 0:
            raise InvalidQuantity(quantity=line.quantity)
        merged[line.offer_item_id] = merged.get(line.offer_item_id, 0) + line.quantity
    total = sum(merged.values())
    limit = per_order_limit or DEFAULT_PER_ORDER_LIMIT
    if not merged or total > limit:
        raise InvalidQuantity(quantity=total, limit=limit)
    # Item-id order: every transaction locks rows in the same order, so two buyers can't deadlock.
    return [Line(item_id, merged[item_id]) for item_id in sorted(merged)]


def hold_expiry(now: datetime, minutes: int = HOLD_MINUTES) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now + timedelta(minutes=minutes)
