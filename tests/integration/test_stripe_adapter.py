"""The Stripe adapter through the real stripe-python client against the Stripe stand-in."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from marketbot.fakes.stripe import FakeStripe
from tasks.adapters.stripe_payments import CheckoutLine, StripePayments


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


@pytest.fixture
def payments(fake: FakeStripe) -> StripePayments:
    return StripePayments(secret_key="sk_test_marketbot", api_base_url=fake.base_url)


def _checkout(payments: StripePayments, reservation_id: uuid.UUID, currency: str = "SGD") -> object:
    now = datetime.now(UTC)
    return payments.create_checkout(
        reservation_id=reservation_id,
        currency=currency,
        lines=[CheckoutLine("Sourdough", 300, 2), CheckoutLine("Croissant", 150, 1)],
        hold_expires_at=now + timedelta(minutes=15),
        now=now,
        success_url="https://t.me/marketbot_test_bot?start=paid",
        cancel_url="https://t.me/marketbot_test_bot?start=cancelled",
        metadata={"offer_id": "7"},
    )


def test_a_retried_checkout_creation_returns_the_same_session(
    payments: StripePayments, fake: FakeStripe
) -> None:
    reservation_id = uuid.uuid4()

    first = _checkout(payments, reservation_id)
    again = _checkout(payments, reservation_id)

    assert first.id == again.id  # type: ignore[attr-defined]
    session = payments.retrieve_checkout(first.id)  # type: ignore[attr-defined]
    assert (session.amount_total, session.currency, session.status) == (750, "sgd", "open")
    assert session.metadata["reservation_id"] == str(reservation_id)
    # The hold is 15 minutes but Stripe needs at least 30: the session outlives it and is expired on release.
    assert session.expires_at - int(datetime.now(UTC).timestamp()) >= 30 * 60
    created = [c for c in fake.calls("/v1/checkout/sessions") if c.method == "POST"]
    assert {c.headers.get("Idempotency-Key") for c in created} == {f"checkout-{reservation_id}"}


def test_zero_decimal_currencies_are_sent_in_whole_units(payments: StripePayments) -> None:
    session = payments.retrieve_checkout(_checkout(payments, uuid.uuid4(), currency="JPY").id)  # type: ignore[attr-defined]
    assert (session.amount_total, session.currency) == (750, "jpy")


def test_expiring_a_session_that_was_already_paid_is_left_alone(
    payments: StripePayments, fake: FakeStripe
) -> None:
    checkout = _checkout(payments, uuid.uuid4())
    fake.complete_checkout(checkout.id)  # type: ignore[attr-defined]

    payments.expire_checkout(checkout.id)  # type: ignore[attr-defined]

    assert payments.retrieve_checkout(checkout.id).status == "complete"  # type: ignore[attr-defined]


def test_refunds_are_idempotent_per_key(payments: StripePayments, fake: FakeStripe) -> None:
    checkout = _checkout(payments, uuid.uuid4())
    fake.complete_checkout(checkout.id)  # type: ignore[attr-defined]
    intent = payments.retrieve_checkout(checkout.id).payment_intent  # type: ignore[attr-defined]

    first = payments.refund(payment_intent_id=intent, idempotency_key="refund-cancel-order-1")
    again = payments.refund(payment_intent_id=intent, idempotency_key="refund-cancel-order-1")

    assert first == again
    refunds = [c for c in fake.calls("/v1/refunds") if c.method == "POST" and c.status == 200]
    assert len({c.response["id"] for c in refunds}) == 1
