"""A verified owner creates an offer with two items through the wizard and publishes it."""

from __future__ import annotations

import random

import sqlalchemy as sa

from tests.e2e.chat import Chat, button, register_verified_business
from tests.e2e.conftest import ADMIN_ID, Stack


def test_owner_creates_previews_and_publishes_an_offer_with_two_items(
    stack: Stack, database_url: str
) -> None:
    owner = Chat(stack, random.randint(10**9, 9 * 10**9), first_name="Flo")
    admin = Chat(stack, ADMIN_ID)
    stranger = Chat(stack, random.randint(10**9, 9 * 10**9))

    stranger.say("/newoffer")  # no business: told what to do instead
    stranger.expect("Register your business first")

    business_id = register_verified_business(stack, owner, admin, "Flo's Bakes")

    owner.say("/newoffer")
    owner.expect("Send a photo of the food")
    owner.say("a photo of bread")
    owner.expect("Please send a photo of the food")
    stack.telegram.send_user_photo(owner.user_id)
    owner.expect("Give the offer a short title")
    owner.say("Evening bread bag")
    description = owner.expect("")  # the description question, with a Skip button
    owner.press(button(description, "Skip"))
    owner.expect("Item 1: what is it called?")
    owner.say("Sourdough loaf")
    owner.expect("How many")
    owner.say("ten")
    owner.expect("whole number from 1 to 1000")
    owner.say("4")
    owner.expect("normal")
    owner.say("7.50")
    owner.expect("offer")
    owner.say("8")  # not below the normal price
    owner.expect("lower than")
    owner.say("3")
    more = owner.expect("Add another item, or are you done?")
    owner.press(button(more, "Add another item"))
    owner.expect("Item 2")
    owner.say("Croissant")
    owner.expect("How many")
    owner.say("6")
    owner.expect("normal")
    owner.say("3.20")
    owner.expect("offer")
    owner.say("1.50")
    more = owner.expect("Add another item, or are you done?")
    owner.press(button(more, "Done with items"))
    owner.expect("When can customers pick up")
    owner.say("tomorrow 18:00-20:30")
    tags = owner.expect("dietary tags")
    owner.press(button(tags, "egetarian"))
    tags = owner.expect("dietary tags")
    owner.press(button(tags, "Done"))

    card = owner.expect("Evening bread bag")  # the photo card, exactly as customers will see it
    assert "Sourdough loaf" in card["text"] and "Croissant" in card["text"]
    assert "<s>" in card["text"]  # normal price struck through
    preview = owner.expect("Publish it?")
    owner.press(button(preview, "Publish"))
    owner.expect("is live!")

    owner.say("/myoffers")
    owner.expect("Offers of Flo")
    entry = owner.expect("Evening bread bag")
    assert "10 available" in entry["text"] and "live" in entry["text"]
    pause = button(entry, "Pause")

    stranger.press(pause)  # someone else's offer id in forged callback data
    stranger.expect("isn't one of yours")
    owner.press(pause)
    owner.expect("is paused")
    owner.press(pause)  # the old button again: nothing changes
    owner.expect("no longer applies")

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            offer = conn.execute(
                sa.text(
                    "SELECT id, status, currency, dietary_tags, pickup_end - pickup_start AS span "
                    "FROM offers WHERE business_id = :b"
                ),
                {"b": business_id},
            ).one()
            items = conn.execute(
                sa.text(
                    "SELECT name, quantity_total, remaining, normal_price_minor, offer_price_minor "
                    "FROM offer_items WHERE offer_id = :o ORDER BY position"
                ),
                {"o": offer.id},
            ).all()
    finally:
        engine.dispose()
    assert (offer.status, offer.currency, offer.dietary_tags) == ("paused", "SGD", ["vegetarian"])
    assert offer.span.total_seconds() == 2.5 * 3600
    assert [tuple(i) for i in items] == [("Sourdough loaf", 4, 4, 750, 300), ("Croissant", 6, 6, 320, 150)]


def test_a_business_that_is_not_verified_cannot_start_an_offer(stack: Stack) -> None:
    owner = Chat(stack, random.randint(10**9, 9 * 10**9))
    owner.press("r:b")
    owner.expect("What is your business called?")
    owner.say("/cancel")
    owner.expect("cancelled")
    owner.say("/newoffer")
    owner.expect("Register your business first")
