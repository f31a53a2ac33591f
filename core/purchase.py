"""Buying, as pure rules and messages: quantities to lines, what a Stripe session's state means for our
payment, and everything the buyer and the business are told along the way.

The worker (tasks.purchase_flows, tasks.payment_flows) reads the database and Stripe and hands plain values
here; nothing in this module does I/O, so every decision can be tested with literals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from core.callbacks import ReleaseHold, ViewOffer
from core.i18n import Html, t
from core.messages import InlineButton, Reply
from core.money import Money, minor_units
from core.reservations import InvalidQuantity, Line

# -- quantities --------------------------------------------------------------------------------------------


def lines_from_quantities(quantities: Sequence[int], item_ids: Sequence[int]) -> list[Line]:
    """Turn a Buy button's per-position quantities into lines of offer item ids; zeros are "not this one".

    `item_ids` are the offer's items in position order. Callback data is untrusted: more quantities than
    items is refused rather than truncated (a stale button from before the offer's items changed).
    """
    if len(quantities) > len(item_ids):
        raise InvalidQuantity(quantity=sum(quantities))
    return [Line(item_ids[i], q) for i, q in enumerate(quantities) if q != 0]


# -- Stripe ------------------------------------------------------------------------------------------------


def stripe_unit_amount(amount_minor: int, currency: str) -> int:
    """The amount in Stripe's smallest unit for `currency`.

    core.money counts minor units with Stripe's own decimals per currency (0 for JPY/VND/KRW…, 3 for KWD…),
    so the number is the same; the check turns a currency Stripe would misread into a loud error.
    """
    minor_units(currency)  # raises ValueError for anything that is not a currency we can price in
    if amount_minor <= 0:
        raise ValueError(f"a checkout amount must be positive, got {amount_minor}")
    return amount_minor


def return_url(bot_username: str | None, public_base_url: str | None, configured: str | None = None) -> str:
    """Where Stripe sends the buyer after paying or cancelling: where the operator said (the local sandbox
    page, say), else back to the bot's chat when we know it."""
    if configured:
        return configured
    if bot_username:
        return f"https://t.me/{bot_username.lstrip('@')}"
    if public_base_url:
        return public_base_url
    return "http://localhost/"  # a harmless local page: the buyer returns to Telegram by themselves


Outcome = Literal["paid", "processing", "failed", "expired", "none"]
# What our payment row may become from each state. Events arrive late, twice and out of order, and each is
# read against Stripe's current session; the guard keeps a stale reading from undoing a later one (a
# replayed `completed` must not turn a failed payment back into processing).
_NEXT: dict[str, frozenset[str]] = {
    "open": frozenset({"processing", "paid", "failed", "expired"}),
    "processing": frozenset({"paid", "failed", "expired"}),
    # Stripe says the money arrived: that wins over any earlier reading (then: an order, or a refund).
    "failed": frozenset({"paid"}),
    "expired": frozenset({"paid"}),
}


# A PaymentIntent in these states after its Checkout Session completed: the delayed method failed (Stripe
# moves it back to requires_payment_method; canceled if it was canceled instead).
FAILED_INTENT_STATES = frozenset({"requires_payment_method", "canceled"})


def session_outcome(
    event_type: str, status: str | None, payment_status: str | None, intent_status: str | None = None
) -> Outcome:
    """What a Checkout Session's *current* state (re-read from Stripe) means for our payment.

    A delayed method's failure cannot be told from the session alone (it stays complete + unpaid): its
    PaymentIntent's state says it (`intent_status`, read when the session is complete + unpaid), and so
    does the event type, whose signature the gateway verified.
    """
    if status == "complete" and payment_status in ("paid", "no_payment_required"):
        return "paid"
    if status == "complete" and payment_status == "unpaid":
        failed_event = event_type == "checkout.session.async_payment_failed"
        return "failed" if failed_event or intent_status in FAILED_INTENT_STATES else "processing"
    if status == "expired":
        return "expired"
    return "none"


def payment_may_become(current: str, new: str) -> bool:
    return new in _NEXT.get(current, frozenset())


# -- messages ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurchaseView:
    """What the buyer's messages about one hold show, in the buyer's language and the venue's time."""

    chat_id: int
    lang: str
    items: tuple[tuple[str, int], ...]  # (item name, quantity) in the offer's item order
    total: Money
    offer_id: int
    offer_title: str
    business: str
    venue: str
    address: str | None
    timezone: str
    pickup_start: datetime
    pickup_end: datetime
    # The message the Buy button sat on (the offer's photo card), edited as the hold moves on.
    message_id: int | None = None
    photo_file_id: str | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def items_text(self, lang: str | None = None) -> Html:
        return describe_items(self.items, lang or self.lang)

    def window(self) -> str:
        return pickup_window(self.pickup_start, self.pickup_end, self.zone)


def describe_items(items: Sequence[tuple[str, int]], lang: str) -> Html:
    return Html(", ".join(t("pickup.item", lang, quantity=q, name=name) for name, q in items))


def pickup_window(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    if local_start.date() == local_end.date():
        return f"{local_start:%a %d %b %H:%M}–{local_end:%H:%M}"
    return f"{local_start:%a %d %b %H:%M} – {local_end:%a %d %b %H:%M}"


def local_clock(when: datetime, zone: ZoneInfo) -> str:
    return f"{when.astimezone(zone):%H:%M}"


def _card(view: PurchaseView, text: str, keyboard: tuple[tuple[InlineButton, ...], ...] = ()) -> Reply:
    """Edit the offer card the Buy button sat on (its caption, for a photo card); a new message otherwise."""
    if view.message_id is None:
        return Reply(view.chat_id, text, inline_keyboard=keyboard)
    return Reply(
        view.chat_id,
        text,
        inline_keyboard=keyboard,
        edit_message_id=view.message_id,
        photo=view.photo_file_id,
    )


def reserved(view: PurchaseView, minutes: int) -> Reply:
    return _card(view, t("buy.reserved", view.lang, items=view.items_text(), minutes=minutes))


def pay_button(view: PurchaseView, *, url: str, expires_at: datetime, reservation_hex: str) -> Reply:
    """The hold with its Pay button (the Checkout Session's URL) and a way to let the units go."""
    text = t(
        "buy.pay",
        view.lang,
        items=view.items_text(),
        business=view.business,
        until=local_clock(expires_at, view.zone),
        zone=view.timezone,
        total=view.total.display(),
    )
    keyboard = (
        (InlineButton(t("buy.button.pay", view.lang, total=view.total.display()), url=url),),
        (
            InlineButton(
                t("buy.button.release", view.lang), callback_data=ReleaseHold(reservation_hex).encode()
            ),
        ),
    )
    return _card(view, text, keyboard)


def still_preparing(view: PurchaseView, reservation_hex: str) -> Reply:
    keyboard = (
        (
            InlineButton(
                t("buy.button.release", view.lang), callback_data=ReleaseHold(reservation_hex).encode()
            ),
        ),
    )
    return _card(view, t("buy.preparing", view.lang, items=view.items_text()), keyboard)


def back_to_offer(offer_id: int, lang: str) -> tuple[tuple[InlineButton, ...], ...]:
    return ((InlineButton(t("buy.button.back", lang), callback_data=ViewOffer(offer_id).encode()),),)


def hold_closed(view: PurchaseView, key: str) -> Reply:
    """The card once the hold is over (released, expired, failed, refunded): no Pay button left."""
    return _card(view, t(key, view.lang, items=view.items_text()), back_to_offer(view.offer_id, view.lang))


def paid_card(view: PurchaseView) -> Reply:
    return _card(view, t("pay.paid_card", view.lang, items=view.items_text(), total=view.total.display()))


def order_confirmation(view: PurchaseView, *, code: str, qr_data: str) -> Reply:
    """The pickup code as a QR photo (the deep link the business scans) with everything needed to collect."""
    text = t(
        "pay.confirmation",
        view.lang,
        code=code,
        items=view.items_text(),
        total=view.total.display(),
        venue=view.venue,
        address=view.address or "",
        window=view.window(),
        zone=view.timezone,
    )
    return Reply(view.chat_id, text, qr_data=qr_data)


def notice(view: PurchaseView, key: str) -> Reply:
    """A new message to the buyer about their hold (the card edit alone is easy to miss)."""
    return Reply(view.chat_id, t(key, view.lang, items=view.items_text(), total=view.total.display()))


def owner_new_order(view: PurchaseView, *, owner_chat_id: int, owner_lang: str, code: str) -> Reply:
    text = t(
        "pay.owner_new_order",
        owner_lang,
        code=code,
        items=view.items_text(owner_lang),
        title=view.offer_title,
        window=view.window(),
        zone=view.timezone,
    )
    return Reply(owner_chat_id, text)
