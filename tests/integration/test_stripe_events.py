"""Stripe events become exactly one order or one refund, whatever their number, order or lateness.

The Stripe stand-in plays the customer (pays, pays late, pays with a delayed method) and produces the real
events; each is applied through payment_flows.process_event against real PostgreSQL, re-reading the session
from the stand-in exactly as in production.
"""

# The buying tests' fixtures are imported below and requested by name, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from core.callbacks import BuyOffer
from core.pickup import normalize_code
from db.models import AuditLogEntry, Order, Refund, Reservation
from db.offer_repositories import NewItem
from marketbot.fakes.stripe import FakeStripe
from tasks import maintenance, payment_flows
from tasks.adapters.stripe_payments import CheckoutLine
from tasks.names import EXECUTE_REFUND
from tests.integration.test_purchase import (
    Published,
    Shop,
    UowFactory,
    customer,
    deps,  # noqa: F401 - fixture
    hold_for,
    now,
    open_shop,
    outbox,
    payments_of,
    press,
    published,  # noqa: F401 - fixture
    remaining,
    reservations_of_id,
    session_of,
    stripe_fake,  # noqa: F401 - fixture
    texts,
    uow_factory,  # noqa: F401 - fixture
)

Deps = payment_flows.PaymentDeps


def checkout(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe, shop: Shop
) -> tuple[uuid.UUID, str]:
    """A hold with its Checkout Session and Pay button, as after Buy; returns (reservation, session)."""
    _, reservation_id = hold_for(uow_factory, shop)
    payment_flows.create_checkout(reservation_id, deps, final_attempt=False)
    return reservation_id, session_of(stripe_fake, reservation_id)["id"]


def last_event(stripe_fake: FakeStripe, session_id: str, event_type: str) -> dict[str, Any]:
    return [
        e for e in stripe_fake.events if e["type"] == event_type and e["data"]["object"]["id"] == session_id
    ][-1]


def deliver(deps: Deps, event: dict[str, Any]) -> str:
    return payment_flows.process_event(event["id"], event["type"], event["data"]["object"]["id"], deps)


def orders_of(uow_factory: UowFactory, reservation_id: uuid.UUID) -> list[Order]:
    with uow_factory() as uow:
        rows = list(uow.session.scalars(select(Order).where(Order.reservation_id == reservation_id)))
        uow.session.expunge_all()
        return rows


def refunds_of(uow_factory: UowFactory, reservation_id: uuid.UUID) -> list[Refund]:
    (payment,) = payments_of(uow_factory, reservation_id)
    with uow_factory() as uow:
        rows = list(uow.session.scalars(select(Refund).where(Refund.payment_id == payment.id)))
        uow.session.expunge_all()
        return rows


def lapse(uow_factory: UowFactory, reservation_id: uuid.UUID) -> None:
    """Time passes: the hold's expiry is behind us (the release sweep has not run)."""
    with uow_factory() as uow:
        uow.session.execute(
            update(Reservation)
            .where(Reservation.id == reservation_id)
            .values(expires_at=now() - timedelta(minutes=1))
        )
        uow.commit()


def test_a_completed_checkout_becomes_one_order_with_a_pickup_code_and_both_sides_are_told(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe, published: Published
) -> None:
    shop = open_shop(uow_factory)
    reservation_id, session_id = checkout(uow_factory, deps, stripe_fake, shop)
    published.sends.clear()
    stripe_fake.complete_checkout(session_id)

    for _ in range(5):  # Stripe delivers the same event again and again
        deliver(deps, last_event(stripe_fake, session_id, "checkout.session.completed"))

    (order,) = orders_of(uow_factory, reservation_id)
    assert order.status == "paid" and normalize_code(order.pickup_code) == order.pickup_code
    assert reservations_of_id(uow_factory, reservation_id).status == "paid"
    (payment,) = payments_of(uow_factory, reservation_id)
    assert payment.status == "paid" and payment.order_id == order.id and payment.paid_at is not None
    assert payment.stripe_payment_intent_id == stripe_fake.find_session(session_id)["payment_intent"]  # type: ignore[index]
    assert remaining(uow_factory, shop.item_ids[0]) == 3  # the held units became sold, nothing moved
    card, confirmation, owner = outbox(uow_factory, published.sends)
    assert card.method == "editMessageCaption" and card.payload["caption"].startswith("✅ Paid ✓")
    assert "reply_markup" not in card.payload
    code = f"{order.pickup_code[:3]}-{order.pickup_code[3:]}"
    assert confirmation.method == "sendPhoto" and code in confirmation.payload["caption"]
    assert confirmation.payload["marketbot_qr_data"].startswith("https://t.me/marketbot_test_bot?start=p_")
    assert "Show this code at the counter." in confirmation.payload["caption"]
    assert owner.chat_id == shop.owner_telegram_id
    assert owner.payload["text"].startswith(f"🛎 New order <b>{code}</b>: 2 × Croissant")


def test_expired_arriving_after_completed_keeps_the_order(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe, published: Published
) -> None:
    shop = open_shop(uow_factory)
    reservation_id, session_id = checkout(uow_factory, deps, stripe_fake, shop)
    stripe_fake.complete_checkout(session_id)
    deliver(deps, last_event(stripe_fake, session_id, "checkout.session.completed"))
    sent = len(published.sends)

    stale = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "checkout.session.expired",
        "data": {"object": {"id": session_id}},
    }
    assert deliver(deps, stale) == "paid"  # re-read from Stripe: the session is paid, not expired

    assert len(orders_of(uow_factory, reservation_id)) == 1
    assert reservations_of_id(uow_factory, reservation_id).status == "paid"
    assert payments_of(uow_factory, reservation_id)[0].status == "paid"
    assert len(published.sends) == sent and remaining(uow_factory, shop.item_ids[0]) == 3


def test_completed_before_the_checkout_task_stored_the_payment_still_makes_one_order(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe
) -> None:
    shop = open_shop(uow_factory)
    _, reservation_id = hold_for(uow_factory, shop)
    # The task reached Stripe, then its worker died before storing anything; the buyer paid meanwhile.
    session = deps.stripe.create_checkout(
        reservation_id=reservation_id,
        currency="SGD",
        lines=[CheckoutLine("Croissant", 250, 2)],
        hold_expires_at=now() + timedelta(minutes=15),
        now=now(),
        success_url="https://t.me/marketbot_test_bot",
        cancel_url="https://t.me/marketbot_test_bot",
        metadata={"offer_id": str(shop.offer_id)},
    )
    stripe_fake.complete_checkout(session.id)

    assert deliver(deps, last_event(stripe_fake, session.id, "checkout.session.completed")) == "paid"
    assert payment_flows.create_checkout(reservation_id, deps, final_attempt=False) == "not_held"  # the retry

    (payment,) = payments_of(uow_factory, reservation_id)
    assert payment.stripe_checkout_session_id == session.id and payment.amount_minor == 500
    assert payment.status == "paid" and len(orders_of(uow_factory, reservation_id)) == 1


def test_a_delayed_payment_is_processing_first_and_an_order_once_the_bank_confirms(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe, published: Published
) -> None:
    shop = open_shop(uow_factory)
    reservation_id, session_id = checkout(uow_factory, deps, stripe_fake, shop)
    published.sends.clear()
    stripe_fake.complete_checkout(session_id, async_payment=True)

    assert deliver(deps, last_event(stripe_fake, session_id, "checkout.session.completed")) == "processing"
    assert payments_of(uow_factory, reservation_id)[0].status == "processing"
    assert orders_of(uow_factory, reservation_id) == []
    assert "We'll send your pickup code as soon as it is confirmed" in texts(uow_factory, published.sends)

    stripe_fake.succeed_async_payment(session_id)
    assert (
        deliver(deps, last_event(stripe_fake, session_id, "checkout.session.async_payment_succeeded"))
        == "paid"
    )
    # The `completed` event delivered again late must not step back to processing.
    deliver(
        deps,
        {
            **last_event(stripe_fake, session_id, "checkout.session.completed"),
            "id": f"evt_{uuid.uuid4().hex}",
        },
    )

    assert len(orders_of(uow_factory, reservation_id)) == 1
    assert payments_of(uow_factory, reservation_id)[0].status == "paid"


def test_a_failed_delayed_payment_releases_the_hold_and_tells_the_buyer(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe, published: Published
) -> None:
    shop = open_shop(uow_factory)
    reservation_id, session_id = checkout(uow_factory, deps, stripe_fake, shop)
    stripe_fake.complete_checkout(session_id, async_payment=True)
    completed = last_event(stripe_fake, session_id, "checkout.session.completed")
    stripe_fake.fail_async_payment(session_id)
    published.sends.clear()

    assert (
        deliver(deps, last_event(stripe_fake, session_id, "checkout.session.async_payment_failed"))
        == "failed"
    )
    deliver(deps, completed)  # arriving after the failure: changes nothing

    assert payments_of(uow_factory, reservation_id)[0].status == "failed"
    assert reservations_of_id(uow_factory, reservation_id).status == "released"
    assert remaining(uow_factory, shop.item_ids[0]) == 5
    assert orders_of(uow_factory, reservation_id) == []
    assert "didn't go through" in texts(uow_factory, published.sends)


def test_an_expired_session_ends_the_hold_and_puts_the_units_back(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe, published: Published
) -> None:
    shop = open_shop(uow_factory)
    reservation_id, session_id = checkout(uow_factory, deps, stripe_fake, shop)
    published.sends.clear()
    stripe_fake.expire_checkout(session_id)
    event = last_event(stripe_fake, session_id, "checkout.session.expired")

    assert deliver(deps, event) == "expired"
    assert deliver(deps, event) == "duplicate"

    assert reservations_of_id(uow_factory, reservation_id).status == "expired"
    assert payments_of(uow_factory, reservation_id)[0].status == "expired"
    assert remaining(uow_factory, shop.item_ids[0]) == 5
    assert "ended before it was paid" in texts(uow_factory, published.sends)


def test_paid_after_the_hold_lapsed_but_before_anyone_reclaimed_it_is_an_order(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe
) -> None:
    shop = open_shop(uow_factory)
    reservation_id, session_id = checkout(uow_factory, deps, stripe_fake, shop)
    lapse(uow_factory, reservation_id)
    stripe_fake.complete_checkout(session_id)

    assert deliver(deps, last_event(stripe_fake, session_id, "checkout.session.completed")) == "paid"

    assert len(orders_of(uow_factory, reservation_id)) == 1
    assert remaining(uow_factory, shop.item_ids[0]) == 3
    # A buyer arriving now cannot reclaim the paid hold's units.
    press(uow_factory, customer(), BuyOffer(shop.offer_id, (3,), "z").encode())
    assert remaining(uow_factory, shop.item_ids[0]) == 0
    assert reservations_of_id(uow_factory, reservation_id).status == "paid"


def test_paid_after_the_hold_was_reclaimed_takes_the_units_again_when_there_are_enough(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe
) -> None:
    shop = open_shop(uow_factory)
    reservation_id, session_id = checkout(uow_factory, deps, stripe_fake, shop)
    lapse(uow_factory, reservation_id)
    maintenance.release_expired_holds(uow_factory, now=now())  # the sweep reclaims the lapsed hold
    press(uow_factory, customer(), BuyOffer(shop.offer_id, (1,), "y").encode())
    assert reservations_of_id(uow_factory, reservation_id).status == "expired"
    assert remaining(uow_factory, shop.item_ids[0]) == 4
    stripe_fake.complete_checkout(session_id)

    assert deliver(deps, last_event(stripe_fake, session_id, "checkout.session.completed")) == "paid"

    assert len(orders_of(uow_factory, reservation_id)) == 1
    assert reservations_of_id(uow_factory, reservation_id).status == "paid"
    assert remaining(uow_factory, shop.item_ids[0]) == 2
    assert refunds_of(uow_factory, reservation_id) == []


def test_paid_after_the_hold_was_reclaimed_and_sold_is_refunded_exactly_once(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe, published: Published
) -> None:
    shop = open_shop(uow_factory, [NewItem("Croissant", 2, 400, 250)])
    reservation_id, session_id = checkout(uow_factory, deps, stripe_fake, shop)
    lapse(uow_factory, reservation_id)
    press(
        uow_factory, customer(), BuyOffer(shop.offer_id, (2,), "y").encode()
    )  # the units go to someone else
    published.sends.clear()
    published.jobs.clear()
    stripe_fake.complete_checkout(session_id)
    event = last_event(stripe_fake, session_id, "checkout.session.completed")

    deliver(deps, event)
    deliver(deps, event)
    deliver(deps, {**event, "id": f"evt_{uuid.uuid4().hex}"})  # another event about the same paid session

    assert orders_of(uow_factory, reservation_id) == []
    (refund,) = refunds_of(uow_factory, reservation_id)
    assert (refund.reason, refund.status, refund.amount_minor) == ("paid_after_release", "requested", 500)
    assert [j.task for j in published.jobs] == [EXECUTE_REFUND]
    (payment,) = payments_of(uow_factory, reservation_id)
    assert payment.status == "paid" and payment.stripe_payment_intent_id  # what the refund task refunds
    assert remaining(uow_factory, shop.item_ids[0]) == 0  # never oversold
    assert texts(uow_factory, published.sends).count("Your money (SGD 5.00) is on its way back") == 1
    with uow_factory() as uow:
        audits = uow.session.scalar(
            select(func.count()).where(
                AuditLogEntry.action == "payment.refund_requested",
                AuditLogEntry.subject_id == str(payment.id),
            )
        )
    assert audits == 1


def test_an_event_for_a_session_stripe_does_not_know_changes_nothing(deps: Deps) -> None:
    assert payment_flows.process_event("evt_forged", "checkout.session.completed", "cs_test_nope", deps) == (
        "unknown_session"
    )
