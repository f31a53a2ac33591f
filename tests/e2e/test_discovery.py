"""A customer finds a verified bakery's offer nearby, opens it and picks a quantity (the real stack)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from core.discovery import format_distance, haversine_m
from db.offer_repositories import NewItem
from db.session import make_engine, make_session_factory
from db.uow import SqlAlchemyUnitOfWork
from tests.e2e.chat import Chat, button, register_verified_business
from tests.e2e.conftest import ADMIN_ID, Stack


def _publish_offer(database_url: str, business_id: int, title: str) -> int:
    """A published offer with two items, as the creation wizard leaves it (that flow has its own e2e test)."""
    now = datetime.now(UTC)
    engine = make_engine(database_url)
    try:
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            business = uow.businesses.get_for_update(business_id)
            assert business is not None
            offer = uow.offers.create(
                business_id=business.id,
                venue_id=business.venues[0].id,
                title=title,
                description="Baked this morning",
                photo_file_id="AgACAgIAAxkDAAIe2e-photo",
                thumb_file_id="AgACAgIAAxkDAAIe2e-thumb",
                pickup_start=now + timedelta(hours=1),
                pickup_end=now + timedelta(hours=3),
                currency="SGD",
                dietary_tags=["vegetarian"],
                status="published",
                now=now,
                items=[NewItem("Sourdough loaf", 4, 750, 300), NewItem("Croissant", 6, 320, 150)],
            )
            uow.commit()
            return offer.id
    finally:
        engine.dispose()


def _bot_message(stack: Stack, user_id: int, fragment: str) -> dict[str, Any]:
    """The bot's stored message (as edited so far) whose text or caption contains `fragment`."""
    for message in reversed(stack.telegram.bot_messages(user_id)):
        if fragment in (message.get("text") or message.get("caption") or ""):
            return dict(message)
    raise AssertionError(f"no bot message with {fragment!r}")


def _wait_for_edit(
    stack: Stack, user_id: int, message_id: int, fragment: str, timeout: float = 20.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in stack.telegram.bot_messages(user_id, after=message_id - 1):
            if message["message_id"] == message_id and message.get("edit_date"):
                labels = [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row]
                if any(fragment in label for label in labels):
                    return message
        time.sleep(0.05)
    raise AssertionError(f"message {message_id} was not edited to show {fragment!r}")


def test_customer_finds_a_nearby_offer_opens_it_and_picks_two(stack: Stack, database_url: str) -> None:
    # Given a verified bakery (pinned in Singapore) with a published offer
    owner = Chat(stack, random.randint(10**9, 9 * 10**9), first_name="Flo")
    admin = Chat(stack, ADMIN_ID)
    business_id = register_verified_business(stack, owner, admin, "Flo's Bakes")
    title = f"Evening bread bag {random.randint(1000, 9999)}"
    offer_id = _publish_offer(database_url, business_id, title)

    # When a new customer asks for food, they are asked where they are
    customer = Chat(stack, random.randint(10**9, 9 * 10**9), first_name="Cas")
    customer.say("/find")
    customer.expect("Share your location")

    # When they share a location about 400 m from the bakery
    stack.telegram.send_location(customer.user_id, 1.2870, 103.8600)
    customer.expect("Location saved")
    listing = customer.expect(title)
    # Then the list shows the offer with its shop, distance, prices, stock and pickup time
    distance = format_distance(haversine_m(1.2870, 103.8600, 1.2834, 103.8607))  # about 400 m
    for fragment in ("Flo's Bakes", distance, "from <b>SGD 1.50</b> <s>SGD 3.20</s>", "10 left", "🕒"):
        assert fragment in listing["text"], listing["text"]
    open_offer = button(listing, title[:20])
    assert open_offer == f"ov:{offer_id}:"

    # When they open it
    customer.press(open_offer)
    detail = customer.expect("Baked this morning")
    # Then a photo with the offer's detail arrives, one Sourdough loaf picked
    assert detail["photo"] == "AgACAgIAAxkDAAIe2e-photo"
    assert "12 Baker Street" in detail["text"] and "Croissant" in detail["text"]
    assert button(detail, "Reserve 1") == button(detail, "SGD 3.00")
    detail_message = _bot_message(stack, customer.user_id, "Baked this morning")

    # When they tap + next to the loaf
    stack.telegram.send_callback(
        customer.user_id,
        button(detail, "＋"),
        message_id=detail_message["message_id"],
        first_name="Cas",
    )
    # Then the same message is edited to show two loaves and a Buy button with the right total
    edited = _wait_for_edit(stack, customer.user_id, detail_message["message_id"], "Reserve 2 · SGD 6.00")
    labels = [b["text"] for row in edited["reply_markup"]["inline_keyboard"] for b in row]
    assert "− Sourdough loaf: 2" in labels
    buy = next(
        b["callback_data"]
        for row in edited["reply_markup"]["inline_keyboard"]
        for b in row
        if "Reserve" in b["text"]
    )
    assert buy.startswith(f"by:{offer_id}:2.0:")
    assert stack.telegram.calls("editMessageCaption"), "the picker edits the photo's caption"
