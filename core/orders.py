"""A customer's orders, as pure rules and text: which are active, whether one may still be cancelled, and how
"My orders", the cancel dialog and the pickup code read.

Cancel policy: only a `paid` order, only before `pickup_start - cutoff` (ORDER_CANCEL_CUTOFF_MINUTES), so the
shop knows what to prepare once the cutoff has passed. The worker applies it again inside the cancelling
transaction (the order row decides, not the button the customer pressed).

An order is *active* while it is paid and its pickup window has not ended; everything else (redeemed,
cancelled, refunded, or a window that ended uncollected) is *past*. Active orders are listed first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from core.callbacks import MyOrders, OrderAction
from core.errors import DomainError
from core.i18n import Html, t
from core.messages import InlineButton, Keyboard
from core.money import Money
from core.offer_wizard_card import WizardContext, format_window
from core.pickup import display_code

PAGE_SIZE = 5


@dataclass(frozen=True)
class OrderSummary:
    """What the customer sees of one order (read from the database, rendered here)."""

    order_id: UUID
    offer_title: str
    business_name: str
    items: tuple[tuple[str, int], ...]  # (item name, units), in the offer's item order
    total_minor: int
    currency: str
    status: str  # paid / redeemed / cancelled / refunded
    pickup_start: datetime
    pickup_end: datetime
    timezone: str  # the venue's IANA zone: times are shown in it
    pickup_code: str
    refund_status: str | None = None  # requested / succeeded / failed once money is going back

    def is_active(self, now: datetime) -> bool:
        return is_active(self.status, self.pickup_end, now)

    @property
    def total(self) -> Money:
        return Money(self.total_minor, self.currency)


def is_active(status: str, pickup_end: datetime, now: datetime) -> bool:
    """Paid and still collectable: the first section of "My orders" (the database sorts by the same rule)."""
    return status == "paid" and now < pickup_end


# -- the cancel policy ------------------------------------------------------------------------------------


class CancelRefused(DomainError):
    code = "cancel_refused"


class AlreadyCollected(CancelRefused):
    code = "already_collected"


class AlreadyCancelled(CancelRefused):
    code = "already_cancelled"


class AlreadyRefunded(CancelRefused):
    code = "already_refunded"


class CutoffPassed(CancelRefused):
    """Too close to (or past) the pickup start; `deadline` is when cancelling closed."""

    code = "cutoff_passed"


def cancel_deadline(pickup_start: datetime, cutoff: timedelta) -> datetime:
    return pickup_start - cutoff


def ensure_cancellable(status: str, pickup_start: datetime, now: datetime, cutoff: timedelta) -> None:
    """Raise the reason an order cannot be cancelled by its buyer now; return if it can."""
    if status == "redeemed":
        raise AlreadyCollected()
    if status == "cancelled":
        raise AlreadyCancelled()
    if status == "refunded":
        raise AlreadyRefunded()
    if status != "paid":  # pragma: no cover - the schema allows no other status
        raise CancelRefused(status=status)
    deadline = cancel_deadline(pickup_start, cutoff)
    if now >= deadline:
        raise CutoffPassed(deadline=deadline)


# -- text -------------------------------------------------------------------------------------------------


def items_text(items: Sequence[tuple[str, int]]) -> str:
    """ "2 × Croissant, 1 × Sourdough" (plain text: escaped by t() when inserted)."""
    return ", ".join(f"{quantity} × {name}" for name, quantity in items)


def window_text(order: OrderSummary, now: datetime, lang: str) -> str:
    """The pickup window in the venue's timezone, relative to today there ("Today 18:00–21:00 (…)")."""
    ctx = WizardContext(order.business_name, order.currency, order.timezone, now)
    return format_window(order.pickup_start, order.pickup_end, lang, ctx)


def local_time(moment: datetime, timezone: str) -> str:
    """ "Mon 23 Nov 17:00 (Asia/Singapore)": a moment as the venue's clock shows it."""
    return f"{moment.astimezone(ZoneInfo(timezone)):%a %d %b %H:%M} ({timezone})"


def status_text(order: OrderSummary, now: datetime, lang: str) -> str:
    if order.status == "paid":
        if order.is_active(now):
            return t("orders.status.paid", lang, code=display_code(order.pickup_code))
        return t("orders.status.missed", lang)
    if order.status == "cancelled":
        # Cancelled orders keep their status when the money comes back; the refund says where it stands.
        return t(f"orders.status.cancelled.{order.refund_status or 'none'}", lang)
    return t(f"orders.status.{order.status}", lang)


def order_entry(number: int, order: OrderSummary, now: datetime, lang: str) -> str:
    return t(
        "orders.entry",
        lang,
        number=number,
        title=order.offer_title,
        business=order.business_name,
        items=items_text(order.items),
        total=order.total.display(),
        window=window_text(order, now, lang),
        status=Html(status_text(order, now, lang)),
    )


def orders_page(
    orders: Sequence[OrderSummary], *, page: int, total_count: int, now: datetime, lang: str
) -> tuple[str, Keyboard]:
    """One page of "My orders": the text and its buttons (code and cancel per active order, then paging)."""
    pages = max(1, -(-total_count // PAGE_SIZE))
    if not orders:
        return t("orders.empty", lang), ()
    parts = [t("orders.header", lang, page=page + 1, pages=pages)]
    rows: list[tuple[InlineButton, ...]] = []
    section: str | None = None
    for offset, order in enumerate(orders):
        number = page * PAGE_SIZE + offset + 1
        current = "active" if order.is_active(now) else "past"
        if current != section:
            parts.append(t(f"orders.section.{current}", lang))
            section = current
        parts.append(order_entry(number, order, now, lang))
        if current == "active":
            rows.append(
                (
                    InlineButton(
                        t("orders.button.show", lang, number=number),
                        callback_data=OrderAction("show", order.order_id.hex).encode(),
                    ),
                    InlineButton(
                        t("orders.button.cancel", lang, number=number),
                        callback_data=OrderAction("cancel", order.order_id.hex).encode(),
                    ),
                )
            )
    nav: list[InlineButton] = []
    if page > 0:
        nav.append(InlineButton(t("orders.button.previous", lang), callback_data=MyOrders(page - 1).encode()))
    if page + 1 < pages:
        nav.append(InlineButton(t("orders.button.next", lang), callback_data=MyOrders(page + 1).encode()))
    if nav:
        rows.append(tuple(nav))
    return "\n\n".join(parts), tuple(rows)


def code_caption(order: OrderSummary, now: datetime, lang: str) -> str:
    return t(
        "orders.code_caption",
        lang,
        code=display_code(order.pickup_code),
        title=order.offer_title,
        business=order.business_name,
        items=items_text(order.items),
        window=window_text(order, now, lang),
    )


def confirm_cancel_text(order: OrderSummary, now: datetime, cutoff: timedelta, lang: str) -> str:
    return t(
        "orders.confirm_cancel",
        lang,
        items=items_text(order.items),
        title=order.offer_title,
        business=order.business_name,
        total=order.total.display(),
        deadline=local_time(cancel_deadline(order.pickup_start, cutoff), order.timezone),
    )


def confirm_cancel_keyboard(order: OrderSummary, lang: str) -> Keyboard:
    return (
        (
            InlineButton(
                t("orders.button.cancel_yes", lang),
                callback_data=OrderAction("cancel_confirmed", order.order_id.hex).encode(),
            ),
            InlineButton(t("orders.button.cancel_no", lang), callback_data=MyOrders(0).encode()),
        ),
    )


def refusal_text(refusal: CancelRefused, order: OrderSummary, cutoff: timedelta, lang: str) -> str:
    """Why the buyer cannot cancel, in words (the cutoff as the venue's clock shows it)."""
    if isinstance(refusal, CutoffPassed):
        deadline = cancel_deadline(order.pickup_start, cutoff)
        return t(
            "orders.refused.cutoff_passed",
            lang,
            minutes=int(cutoff.total_seconds() // 60),
            deadline=local_time(deadline, order.timezone),
        )
    if isinstance(refusal, AlreadyCancelled):
        return t(f"orders.refused.already_cancelled.{order.refund_status or 'none'}", lang)
    return t(f"orders.refused.{refusal.code}", lang)
