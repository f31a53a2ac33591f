"""The customer's orders as pure rules: the cancel cutoff, what is active, and how "My orders" reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core import orders
from core.callbacks import MyOrders, OrderAction, decode
from core.orders import (
    AlreadyCancelled,
    AlreadyCollected,
    AlreadyRefunded,
    CutoffPassed,
    OrderSummary,
    ensure_cancellable,
)
from core.pickup import parse_deep_link_payload, pickup_qr_data

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # 14:00 in Singapore
HOUR = timedelta(hours=1)


def _order(status: str = "paid", *, start: datetime = NOW + 3 * HOUR, **kw: object) -> OrderSummary:
    values: dict[str, object] = {
        "order_id": uuid.uuid4(),
        "offer_title": "Pastry bag",
        "business_name": "Sunrise Bakery",
        "items": (("Croissant", 2), ("Sourdough", 1)),
        "total_minor": 500,
        "currency": "SGD",
        "status": status,
        "pickup_start": start,
        "pickup_end": start + 2 * HOUR,
        "timezone": "Asia/Singapore",
        "pickup_code": "ABC234",
    }
    values.update(kw)
    return OrderSummary(**values)  # type: ignore[arg-type]


def test_a_paid_order_can_be_cancelled_until_the_cutoff_before_pickup() -> None:
    start = NOW + 2 * HOUR
    ensure_cancellable("paid", start, start - HOUR - timedelta(seconds=1), HOUR)
    with pytest.raises(CutoffPassed) as refused:
        ensure_cancellable("paid", start, start - HOUR, HOUR)  # the cutoff itself is too late
    assert refused.value.params["deadline"] == start - HOUR


@pytest.mark.parametrize(
    ("status", "error"),
    [("redeemed", AlreadyCollected), ("cancelled", AlreadyCancelled), ("refunded", AlreadyRefunded)],
)
def test_only_paid_orders_can_be_cancelled(status: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        ensure_cancellable(status, NOW + 10 * HOUR, NOW, HOUR)


def test_an_order_is_active_while_paid_and_its_window_is_open() -> None:
    order = _order(start=NOW - HOUR)  # window 13:00-15:00 local, now 14:00
    assert order.is_active(NOW)
    assert not order.is_active(order.pickup_end)
    assert not _order("redeemed").is_active(NOW)


def test_my_orders_shows_active_orders_with_code_and_buttons_then_past_ones() -> None:
    active, past = _order(), _order("cancelled", refund_status="succeeded", start=NOW - 5 * HOUR)

    text, keyboard = orders.orders_page([active, past], page=0, total_count=2, now=NOW, lang="en")

    assert text.index("To pick up") < text.index("Pastry bag") < text.index("Past orders")
    assert "2 × Croissant, 1 × Sourdough — SGD 5.00" in text
    assert "<code>ABC-234</code>" in text
    assert "Today 17:00–19:00" in text  # 09:00 UTC in the venue's zone
    assert "Cancelled · refunded to your card" in text
    (row,) = keyboard  # one row of buttons, for the active order only; no paging on a single page
    assert [decode(b.callback_data) for b in row] == [
        OrderAction("show", active.order_id.hex),
        OrderAction("cancel", active.order_id.hex),
    ]


def test_paging_buttons_lead_to_the_neighbouring_pages() -> None:
    page = [_order("redeemed") for _ in range(orders.PAGE_SIZE)]

    text, keyboard = orders.orders_page(page, page=1, total_count=12, now=NOW, lang="en")

    assert "page 2 of 3" in text and "<b>6. Pastry bag</b>" in text
    assert [decode(b.callback_data) for b in keyboard[-1]] == [MyOrders(0), MyOrders(2)]


def test_no_orders_points_to_find() -> None:
    text, keyboard = orders.orders_page([], page=0, total_count=0, now=NOW, lang="en")
    assert "/find" in text and keyboard == ()


def test_the_pickup_qr_is_the_deep_link_the_business_opens() -> None:
    order_id = uuid.uuid4()
    link = pickup_qr_data(order_id, "ABC234", "marketbot_bot")
    assert link.startswith("https://t.me/marketbot_bot?start=p_")
    payload = link.split("start=", 1)[1]
    assert parse_deep_link_payload(payload) == (order_id, "ABC234")
    assert pickup_qr_data(order_id, "ABC234", None) == payload


def test_the_cutoff_refusal_names_the_deadline_in_the_venues_time() -> None:
    order = _order(start=NOW + HOUR)  # pickup 15:00 local, cutoff 60 min: closed at 14:00 local

    with pytest.raises(CutoffPassed) as refused:
        ensure_cancellable(order.status, order.pickup_start, NOW, HOUR)
    text = orders.refusal_text(refused.value, order, HOUR, "en")

    assert "60 minutes before pickup" in text and "14:00 (Asia/Singapore)" in text


def test_the_confirmation_says_what_and_how_much_comes_back() -> None:
    order = _order()
    text = orders.confirm_cancel_text(order, NOW, HOUR, "en")
    assert "2 × Croissant, 1 × Sourdough" in text and "SGD 5.00 back" in text
    yes, no = orders.confirm_cancel_keyboard(order, "en")[0]
    assert decode(yes.callback_data) == OrderAction("cancel_confirmed", order.order_id.hex)
    assert decode(no.callback_data) == MyOrders(0)
