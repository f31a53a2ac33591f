"""A customer reserves, pays on Stripe's page and gets the pickup code; the shop hears of the order.

The real stack: fake Telegram ⇄ gateway → Redis → workers → PostgreSQL, workers ⇄ the Stripe stand-in,
and the stand-in's signed webhook → the gateway's /stripe/webhook → the payments queue.
"""

from __future__ import annotations

import random
import time
from typing import Any

from sqlalchemy import select

from core.callbacks import ViewOffer
from db.models import Order, Reservation, User
from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from marketbot.harness import open_shops
from tests.e2e.chat import Chat, button
from tests.e2e.conftest import Stack


def _uow(database_url: str) -> tuple[SqlAlchemyUnitOfWork, Any]:
    engine = make_engine(database_url)
    return SqlAlchemyUnitOfWork(make_session_factory(engine)), engine


def _wait_for_pay_button(stack: Stack, user_id: int, message_id: int, timeout: float = 30.0) -> str:
    """The URL of the Pay button the card `message_id` is edited to show."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in stack.telegram.bot_messages(user_id, after=message_id - 1):
            rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
            urls = [b["url"] for row in rows for b in row if b.get("url")]
            if message["message_id"] == message_id and urls:
                return str(urls[0])
        time.sleep(0.05)
    raise AssertionError(f"message {message_id} never showed a Pay button")


def _orders(database_url: str, buyer_telegram_id: int) -> list[tuple[str, str]]:
    unit, engine = _uow(database_url)
    try:
        with unit as uow:
            rows = uow.session.execute(
                select(Order.pickup_code, Reservation.status)
                .join(Reservation, Reservation.id == Order.reservation_id)
                .join(User, User.id == Order.user_id)
                .where(User.telegram_user_id == buyer_telegram_id)
            ).all()
            return [(str(r[0]), str(r[1])) for r in rows]
    finally:
        engine.dispose()


def test_customer_reserves_pays_on_stripe_and_gets_a_pickup_code(stack: Stack, database_url: str) -> None:
    # Given a verified bakery with a published offer
    owner = Chat(stack, random.randint(10**9, 9 * 10**9), first_name="Oki")
    owner.say("/start")
    owner.expect("Welcome")
    title = f"Breakfast set {random.randint(1000, 9999)}"
    (offer_id,) = open_shops(database_url, owner_telegram_ids=[owner.user_id], title=title)

    # When a customer opens the offer, picks two and taps Reserve
    customer = Chat(stack, random.randint(10**9, 9 * 10**9), first_name="Cas")
    customer.say("/start")
    customer.expect("Welcome")
    customer.press(ViewOffer(offer_id).encode())
    customer.expect(title)
    card_id = stack.telegram.bot_messages(customer.user_id)[-1]["message_id"]
    customer.press(ViewOffer(offer_id, (2,)).encode())
    customer.press(button(_edited_to(stack, customer.user_id, card_id, "Reserve 2"), "Reserve 2"))

    # Then the card becomes the hold with a Pay button leading to the Stripe Checkout page
    pay_url = _wait_for_pay_button(stack, customer.user_id, card_id)
    assert pay_url.startswith(f"{stack.stripe.base_url}/pay/cs_test_")
    session_id = pay_url.rsplit("/", 1)[1]
    session = stack.stripe.find_session(session_id)
    assert session is not None and session["amount_total"] == 400 and session["currency"] == "sgd"

    # When the customer pays, Stripe's signed webhook reaches the gateway and the workers
    stack.stripe.complete_checkout(session_id)

    # Then the customer gets the order confirmation as a QR photo with the pickup code
    confirmation = customer.expect("Order confirmed", timeout=40)
    ((code, reservation_status),) = _orders(database_url, customer.user_id)
    shown = f"{code[:3]}-{code[3:]}"
    assert shown in confirmation["text"] and "Show this code at the counter." in confirmation["text"]
    assert "2 × Kaya toast" in confirmation["text"] and reservation_status == "paid"
    photos = [
        c
        for c in stack.telegram.calls("sendPhoto")
        if c.status == 200
        and c.params.get("chat_id") == customer.user_id
        and shown in str(c.params.get("caption"))
    ]
    assert len(photos) == 1
    # And the shop owner hears about the new order
    assert owner.expect("New order")["text"].startswith(f"🛎 New order <b>{shown}</b>: 2 × Kaya toast")
    stack.stripe.wait_for_deliveries(1, status=200)
    # And the card no longer offers to pay
    assert _caption_of(stack, customer.user_id, card_id).startswith("✅ Paid ✓")


def _caption_of(stack: Stack, user_id: int, message_id: int, timeout: float = 20.0) -> str:
    """The card's caption once an edit shows it paid (edits are sent in order, after the confirmation)."""
    deadline = time.monotonic() + timeout
    caption = ""
    while time.monotonic() < deadline:
        found = [m for m in stack.telegram.bot_messages(user_id) if m["message_id"] == message_id]
        caption = str(found[0].get("caption") or "") if found else ""
        if "Paid" in caption and not found[0].get("reply_markup"):
            return caption
        time.sleep(0.05)
    return caption


def _edited_to(
    stack: Stack, user_id: int, message_id: int, label: str, timeout: float = 20.0
) -> dict[str, Any]:
    """The card once an edit shows a button whose text contains `label`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in stack.telegram.bot_messages(user_id, after=message_id - 1):
            rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
            if message["message_id"] == message_id and any(label in b["text"] for row in rows for b in row):
                return dict(message)
        time.sleep(0.05)
    raise AssertionError(f"message {message_id} never showed {label!r}")


def test_late_reordered_and_repeated_stripe_events_still_make_one_order(
    stack: Stack, database_url: str
) -> None:
    # Given a customer with a hold and its Pay button
    owner = Chat(stack, random.randint(10**9, 9 * 10**9), first_name="Oki")
    owner.say("/start")
    owner.expect("Welcome")
    title = f"Lunch box {random.randint(1000, 9999)}"
    (offer_id,) = open_shops(database_url, owner_telegram_ids=[owner.user_id], title=title)
    customer = Chat(stack, random.randint(10**9, 9 * 10**9), first_name="Cas")
    customer.say("/start")
    customer.expect("Welcome")
    customer.press(ViewOffer(offer_id).encode())
    customer.expect(title)
    card_id = stack.telegram.bot_messages(customer.user_id)[-1]["message_id"]
    customer.press(button(_edited_to(stack, customer.user_id, card_id, "Reserve 1"), "Reserve 1"))
    session_id = _wait_for_pay_button(stack, customer.user_id, card_id).rsplit("/", 1)[1]

    # When they pay with a delayed method while our webhook endpoint is unreachable, and the two events
    # (completed, then async_payment_succeeded) finally arrive newest first, each of them twice
    stack.stripe.hold_deliveries()
    try:
        stack.stripe.complete_checkout(session_id, async_payment=True)
        stack.stripe.succeed_async_payment(session_id)
    finally:
        released = stack.stripe.release_deliveries(reverse=True, times=2)
    assert len(released) == 2

    # Then the customer is confirmed exactly once, and there is exactly one paid order
    confirmation = customer.expect("Order confirmed", timeout=40)
    ((code, status),) = _orders(database_url, customer.user_id)
    assert status == "paid" and f"{code[:3]}-{code[3:]}" in confirmation["text"]
    deadline = time.monotonic() + 30
    while any(
        sum(1 for event_id, code in list(stack.stripe.webhook_deliveries) if event_id == e and code == 200)
        < 2
        for e in released
    ):
        assert time.monotonic() < deadline, "the released events were not all delivered twice"
        time.sleep(0.05)
    time.sleep(1.0)  # give any wrongly repeated confirmation the time to show up before counting
    confirmations = [m for m in customer._messages() if "Order confirmed" in m["text"]]
    assert len(confirmations) == 1
    assert len(_orders(database_url, customer.user_id)) == 1
