"""A new owner registers a business through the guided dialog and an admin verifies it."""

from __future__ import annotations

import random
import time
from typing import Any

import sqlalchemy as sa

from tests.e2e.chat import Chat, buttons
from tests.e2e.conftest import ADMIN_ID, Stack


def _business(database_url: str, business_id: int) -> Any:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT status, name, category, currency, contact_phone, verified_at FROM businesses "
                    "WHERE id = :i"
                ),
                {"i": business_id},
            ).one()
    finally:
        engine.dispose()


def _audit(database_url: str, business_id: int) -> list[tuple[str, int | None]]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT action, actor_telegram_user_id FROM audit_log WHERE subject_type = 'business' "
                    "AND subject_id = :i ORDER BY id"
                ),
                {"i": str(business_id)},
            ).all()
            return [(r.action, r.actor_telegram_user_id) for r in rows]
    finally:
        engine.dispose()


def test_owner_registers_each_step_checks_its_input_and_an_admin_approves(
    stack: Stack, database_url: str
) -> None:
    owner = Chat(stack, random.randint(10**9, 9 * 10**9), first_name="Bob")
    admin = Chat(stack, ADMIN_ID, first_name="Ops")

    owner.say("/start")
    owner.expect("Welcome")
    owner.press("r:b")
    owner.expect("What is your business called?")

    stack.telegram.send_location(owner.user_id, 1.3, 103.8)  # not a name
    owner.expect("Please answer with a text message.")
    owner.say("Bob's Bakery")
    category = owner.expect("What kind of business")
    assert "rg:c:bakery" in buttons(category)

    owner.say("spaceship")
    owner.expect("Please tap one of the buttons.")
    owner.press("rg:c:bakery")
    owner.expect("pickup address")

    owner.say("12 Baker Street, Singapore 049315")
    owner.expect("Send the venue's location")
    owner.say("it's near the MRT")
    owner.expect("Please send the location with the button")
    stack.telegram.send_location(owner.user_id, 1.2834, 103.8607)
    owner.expect("Share a contact phone number")

    stack.telegram.send_contact(owner.user_id, "+6598765432", own=False)
    owner.expect("your own number")
    stack.telegram.send_contact(owner.user_id, "+6591234567", own=True, first_name="Bob")
    timezone = owner.expect("Which timezone")
    first_zone = timezone["reply_markup"]["inline_keyboard"][0][0]
    assert first_zone["text"] == "✅ Asia/Singapore"  # inferred from the pin

    owner.press(first_zone["callback_data"])
    currency = owner.expect("Which currency")
    assert buttons(currency)[0] == "rg:u:SGD"  # suggested from the timezone
    owner.say("doubloons")
    owner.expect("I don't know that currency")
    owner.say("sgd")
    confirm = owner.expect("Is everything right?")
    assert "Bob's Bakery" in confirm["text"] and "+6591234567" in confirm["text"]

    owner.press("rg:c:cafe")  # a stale button from the category step
    owner.expect("That button belongs to an earlier question.")
    owner.press("rg:s:yes")
    owner.expect("waiting for our team to verify it")

    card = admin.expect("New business to verify")
    approve = next(d for d in buttons(card) if d.startswith("ad:ap:"))
    business_id = int(approve.rsplit(":", 1)[1])

    # The owner forges the admin's button: nothing changes.
    owner.press(approve)
    owner.expect("for MarketBot operators only")
    assert _business(database_url, business_id).status == "pending"

    # The admin double-taps Approve: one decision, one message to the owner.
    admin.press(approve)
    admin.press(approve)
    admin.expect("Approved #")
    admin.expect("already verified")
    owner.expect("is verified! You can now publish offers.")
    time.sleep(1.0)
    assert sum("is verified!" in m["text"] for m in owner._messages()) == 1

    stored = _business(database_url, business_id)
    assert (stored.status, stored.name, stored.category, stored.currency, stored.contact_phone) == (
        "verified",
        "Bob's Bakery",
        "bakery",
        "SGD",
        "+6591234567",
    )
    assert _audit(database_url, business_id) == [
        ("business.registered", owner.user_id),
        ("business.approve", ADMIN_ID),
    ]

    # Asking again shows where the business stands instead of a new registration.
    owner.press("r:b")
    owner.expect("is verified. Send /newoffer")


def test_admin_rejects_with_a_reason_the_owner_sees_and_can_register_again(
    stack: Stack, database_url: str
) -> None:
    owner = Chat(stack, random.randint(10**9, 9 * 10**9), first_name="Cy")
    admin = Chat(stack, ADMIN_ID)
    owner.press("r:b")
    owner.expect("What is your business called?")
    owner.say("Cy's Corner Shop")
    owner.expect("What kind of business")
    owner.press("rg:c:grocery")
    owner.say("3 Market Road, Penang")
    owner.expect("No pin?")
    owner.press("rg:l:skip")
    stack.telegram.send_contact(owner.user_id, "+60123456789", own=True)
    owner.say("Asia/Kuala_Lumpur")
    owner.press("rg:u:MYR")
    owner.press("rg:s:yes")
    owner.expect("waiting for our team")

    card = admin.expect("Corner Shop")
    reject = next(d for d in buttons(card) if d.startswith("ad:rj:"))
    admin.press(reject)
    admin.expect("Why is #")
    admin.say("no")
    admin.expect("3 to 500 characters")
    admin.say("Please add the shop's street number")
    admin.expect("Rejected #")
    notice = owner.expect("was not approved")
    assert "street number" in notice["text"]

    owner.press("r:b")
    again = owner.expect("was not approved")
    owner.press(buttons(again)[0])
    owner.expect("What is your business called?")


def test_cancel_leaves_the_registration_at_any_step(stack: Stack) -> None:
    owner = Chat(stack, random.randint(10**9, 9 * 10**9))
    owner.press("r:b")
    owner.expect("What is your business called?")
    owner.say("Dee's Deli")
    owner.expect("What kind of business")

    owner.say("/cancel")
    owner.expect("Okay, cancelled.")
    owner.say("bakery")  # no dialog any more: free text gets the usual hint
    owner.expect("didn't understand")


def test_admin_console_is_for_admins_only(stack: Stack) -> None:
    stranger = Chat(stack, random.randint(10**9, 9 * 10**9))
    stranger.say("/admin")
    stranger.expect("for MarketBot operators only")
    admin = Chat(stack, ADMIN_ID)
    admin.say("/admin")
    admin.expect("Operator console")
