"""Offers: the state machine (one table) and the rules an offer's fields must follow.

Validators return a list of problem codes (empty when fine) so a guided dialog can check one step at a
time and tell the owner everything wrong at once; `raise_if_invalid` turns collected problems into
`InvalidOffer` for use cases. Problem codes are stable ids the worker maps to translated text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from core.errors import DomainError
from core.money import Money


class OfferStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    PAUSED = "paused"
    SOLD_OUT = "sold_out"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class OfferAction(StrEnum):
    PUBLISH = "publish"
    PAUSE = "pause"
    RESUME = "resume"
    MARK_SOLD_OUT = "mark_sold_out"
    RESTOCK = "restock"
    CANCEL = "cancel"
    EXPIRE = "expire"
    EDIT = "edit"


_S, _A = OfferStatus, OfferAction

# Everything an offer may do. A (status, action) pair that is not here is refused.
# - sold_out is reached only from published (stock ran out while on sale); a paused offer whose last held
#   units get paid simply stays paused with nothing left, and `resume` puts it back on sale as usual.
# - a sold-out offer is not edited: adding units back is `restock`, and nothing else matters while nobody
#   can buy.
# - cancelled and expired are terminal: buyers have been refunded or the food is gone.
TRANSITIONS: Final[Mapping[tuple[OfferStatus, OfferAction], OfferStatus]] = MappingProxyType(
    {
        (_S.DRAFT, _A.PUBLISH): _S.PUBLISHED,
        (_S.DRAFT, _A.EDIT): _S.DRAFT,
        (_S.DRAFT, _A.CANCEL): _S.CANCELLED,
        (_S.DRAFT, _A.EXPIRE): _S.EXPIRED,
        (_S.PUBLISHED, _A.PAUSE): _S.PAUSED,
        (_S.PUBLISHED, _A.MARK_SOLD_OUT): _S.SOLD_OUT,
        (_S.PUBLISHED, _A.EDIT): _S.PUBLISHED,
        (_S.PUBLISHED, _A.CANCEL): _S.CANCELLED,
        (_S.PUBLISHED, _A.EXPIRE): _S.EXPIRED,
        (_S.PAUSED, _A.RESUME): _S.PUBLISHED,
        (_S.PAUSED, _A.EDIT): _S.PAUSED,
        (_S.PAUSED, _A.CANCEL): _S.CANCELLED,
        (_S.PAUSED, _A.EXPIRE): _S.EXPIRED,
        (_S.SOLD_OUT, _A.RESTOCK): _S.PUBLISHED,
        (_S.SOLD_OUT, _A.CANCEL): _S.CANCELLED,
        (_S.SOLD_OUT, _A.EXPIRE): _S.EXPIRED,
    }
)

TERMINAL_STATUSES: Final = frozenset({OfferStatus.CANCELLED, OfferStatus.EXPIRED})
# Actions that put the offer (back) on sale: pointless, and misleading to buyers, once pickup is over.
_GOES_ON_SALE: Final = frozenset({OfferAction.PUBLISH, OfferAction.RESUME, OfferAction.RESTOCK})


class TransitionRefused(DomainError):
    """The action is not allowed in the offer's current status. params: status, action."""

    code = "offer_transition_refused"


class PickupWindowOver(TransitionRefused):
    """The offer cannot go on sale: its pickup window has ended. params: status, action."""

    code = "offer_window_over"


def transition(
    status: OfferStatus, action: OfferAction, *, now: datetime, pickup_end: datetime
) -> OfferStatus:
    """The status after `action`, or TransitionRefused / PickupWindowOver."""
    _require_aware(now=now, pickup_end=pickup_end)
    status, action = OfferStatus(status), OfferAction(action)
    target = TRANSITIONS.get((status, action))
    if target is None:
        raise TransitionRefused(f"cannot {action} a {status} offer", status=status.value, action=action.value)
    window_over = now >= pickup_end
    if action in _GOES_ON_SALE and window_over:
        raise PickupWindowOver(
            f"cannot {action} after the pickup window", status=status.value, action=action.value
        )
    if action is OfferAction.EXPIRE and not window_over:
        # Only the sweep expires offers; doing it early would cancel a live sale without refunds.
        raise TransitionRefused(
            "cannot expire before the pickup window ends",
            status=status.value,
            action=action.value,
            reason="window_not_over",
        )
    return target


def allowed_actions(status: OfferStatus) -> frozenset[OfferAction]:
    """Actions the table allows from `status` (time checks aside), e.g. to choose which buttons to show."""
    return frozenset(action for (source, action) in TRANSITIONS if source == status)


def is_visible_to_customers(status: OfferStatus) -> bool:
    return status == OfferStatus.PUBLISHED


# ---- field rules -------------------------------------------------------------------------------------

NAME_MAX_CHARS: Final = 64
TITLE_MAX_CHARS: Final = 80
DESCRIPTION_MAX_CHARS: Final = 500
MIN_QUANTITY: Final = 1
MAX_QUANTITY: Final = 1000
# "From now until 8pm": a start the owner typed a little while ago is still fine.
PICKUP_START_GRACE: Final = timedelta(hours=1)
MAX_PICKUP_HORIZON: Final = timedelta(hours=48)

# In the order buttons show them.
DIETARY_TAGS: Final[tuple[str, ...]] = (
    "vegetarian",
    "vegan",
    "halal",
    "gluten_free",
    "contains_nuts",
    "dairy_free",
)


class InvalidOffer(DomainError):
    """One or more field rules failed. `problems` holds the problem codes, in the order found."""

    code = "invalid_offer"

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__(f"invalid offer: {', '.join(self.problems)}", problems=self.problems)


class QuantityBelowCommitted(DomainError):
    """An edit would leave fewer units than are already held or sold. params: minimum."""

    code = "offer_quantity_below_committed"


def raise_if_invalid(*problem_lists: Iterable[str]) -> None:
    problems = tuple(problem for problems in problem_lists for problem in problems)
    if problems:
        raise InvalidOffer(problems)


def validate_item(name: str, quantity: int, normal: Money, offer: Money) -> list[str]:
    problems = _single_line_text(name, "item_name", NAME_MAX_CHARS)
    problems += validate_quantity(quantity)
    if offer.currency != normal.currency:
        problems.append("currency_mismatch")
        return problems
    if offer.amount_minor == 0:
        problems.append("offer_price_zero")
    elif offer >= normal:
        problems.append("offer_price_not_below_normal")
    return problems


def validate_quantity(quantity: int) -> list[str]:
    if quantity < MIN_QUANTITY:
        return ["quantity_too_small"]
    if quantity > MAX_QUANTITY:
        return ["quantity_too_large"]
    return []


def validate_pickup_window(start: datetime, end: datetime, now: datetime) -> list[str]:
    """Times must be timezone-aware (a naive one is a bug in the caller: ValueError)."""
    _require_aware(start=start, end=end, now=now)
    problems: list[str] = []
    if start >= end:
        problems.append("pickup_end_not_after_start")
    if start < now - PICKUP_START_GRACE:
        problems.append("pickup_start_in_past")
    if end <= now:
        problems.append("pickup_end_in_past")
    elif end > now + MAX_PICKUP_HORIZON:
        problems.append("pickup_end_too_far")
    return problems


def validate_title(text: str) -> list[str]:
    return _single_line_text(text, "title", TITLE_MAX_CHARS)


def validate_description(text: str) -> list[str]:
    stripped = text.strip()
    problems: list[str] = []
    if len(stripped) > DESCRIPTION_MAX_CHARS:
        problems.append("description_too_long")
    # Line breaks are fine in a description; other control characters only garble the message.
    if any(_is_control(char) and char not in "\n\r\t" for char in stripped):
        problems.append("description_invalid_characters")
    return problems


def validate_tags(tags: Iterable[str]) -> list[str]:
    tags = list(tags)
    problems: list[str] = []
    if any(tag not in DIETARY_TAGS for tag in tags):
        problems.append("unknown_dietary_tag")
    if len(set(tags)) != len(tags):
        problems.append("duplicate_dietary_tag")
    return problems


def new_quantity_allowed(new_total: int, held: int, sold: int) -> bool:
    """May the owner set the offer's total units to `new_total`? Never below what buyers already have."""
    _require_counts(held=held, sold=sold)
    return max(held + sold, MIN_QUANTITY) <= new_total <= MAX_QUANTITY


def remaining_after_edit(new_total: int, held: int, sold: int) -> int:
    """Units left to sell after the edit (0 means the offer is now sold out)."""
    _require_counts(held=held, sold=sold)
    committed = held + sold
    if new_total < committed:
        raise QuantityBelowCommitted(f"{committed} units already held or sold", minimum=committed)
    raise_if_invalid(validate_quantity(new_total))
    return new_total - committed


def _single_line_text(text: str, field: str, max_chars: int) -> list[str]:
    # Lengths count code points of the stripped text, the same way everywhere.
    stripped = text.strip()
    if not stripped:
        return [f"{field}_empty"]
    problems: list[str] = []
    if len(stripped) > max_chars:
        problems.append(f"{field}_too_long")
    if any(_is_control(char) for char in stripped):  # includes line breaks: names and titles are one line
        problems.append(f"{field}_invalid_characters")
    return problems


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc" or char in "\u2028\u2029"


def _require_aware(**moments: datetime) -> None:
    for name, moment in moments.items():
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")


def _require_counts(**counts: int) -> None:
    for name, count in counts.items():
        if count < 0:
            raise ValueError(f"{name} cannot be negative: {count}")
