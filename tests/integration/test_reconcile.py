"""Reconciliation finishes what lost webhooks and lost tasks left open, exactly as the normal path would."""

# The buying tests' fixtures are imported below and requested by name, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from db.models import Order, Payment, Refund, Reservation
from marketbot.fakes.stripe import FakeStripe
from tasks import payment_flows
from tasks.names import CREATE_CHECKOUT, EXECUTE_REFUND, EXPIRE_CHECKOUT
from tasks.reconcile import PROCESSING_RECHECK_AFTER, reconcile_payments
from tests.integration.test_purchase import (
    Published,
    Shop,
    UowFactory,
    deps,  # noqa: F401 - fixture
    hold_for,
    now,
    open_shop,
    payments_of,
    published,  # noqa: F401 - fixture
    remaining,
    session_of,
    stripe_fake,  # noqa: F401 - fixture
    uow_factory,  # noqa: F401 - fixture
)

Deps = payment_flows.PaymentDeps
# Minutes after which a delayed payment still processing is due to be asked about again.
PROCESSING_DUE = int(PROCESSING_RECHECK_AFTER.total_seconds() // 60) + 1


def _age_payment(uow_factory: UowFactory, reservation_id: uuid.UUID, minutes: int = 5) -> None:
    """Time passes without the webhook: the payment was last looked at `minutes` ago."""
    with uow_factory() as uow:
        uow.session.execute(
            update(Payment)
            .where(Payment.reservation_id == reservation_id)
            .values(updated_at=now() - timedelta(minutes=minutes))
        )
        uow.commit()


def _orders(uow_factory: UowFactory, reservation_id: uuid.UUID) -> list[Order]:
    with uow_factory() as uow:
        rows = list(uow.session.scalars(select(Order).where(Order.reservation_id == reservation_id)))
        uow.session.expunge_all()
        return rows


def test_a_payment_whose_webhook_never_came_becomes_an_order_once(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe, published: Published
) -> None:
    # Given a hold whose customer paid, but whose checkout.session.completed webhook was lost
    shop = open_shop(uow_factory)
    _, reservation_id = hold_for(uow_factory, shop)
    payment_flows.create_checkout(reservation_id, deps, final_attempt=False)
    session_id = session_of(stripe_fake, reservation_id)["id"]
    stripe_fake.complete_checkout(session_id)  # the stand-in has no webhook endpoint: nothing is delivered
    _age_payment(uow_factory, reservation_id)

    # When reconciliation runs (twice: a repeated tick)
    first = reconcile_payments(deps, now=now())
    _age_payment(uow_factory, reservation_id)
    second = reconcile_payments(deps, now=now())

    # Then the payment became exactly one order, as if the webhook had come
    (order,) = _orders(uow_factory, reservation_id)
    assert order.status == "paid"
    (payment,) = payments_of(uow_factory, reservation_id)
    assert payment.status == "paid"
    assert "paid" in first.sessions_applied
    assert second.sessions_applied == []


def test_a_session_that_expired_without_its_webhook_gives_the_units_back(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe
) -> None:
    shop = open_shop(uow_factory)
    _, reservation_id = hold_for(uow_factory, shop, (2,))
    payment_flows.create_checkout(reservation_id, deps, final_attempt=False)
    assert remaining(uow_factory, shop.item_ids[0]) == 3
    stripe_fake.expire_checkout(session_of(stripe_fake, reservation_id)["id"])
    _age_payment(uow_factory, reservation_id)

    reconcile_payments(deps, now=now())

    with uow_factory() as uow:
        status = uow.session.scalar(select(Reservation.status).where(Reservation.id == reservation_id))
    assert status in ("expired", "released")
    assert remaining(uow_factory, shop.item_ids[0]) == 5
    assert _orders(uow_factory, reservation_id) == []


def _delayed_payment_processing(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe
) -> tuple[Shop, uuid.UUID, str]:
    """A hold of 2 units paid by a delayed method (a bank debit): completed, still processing."""
    shop = open_shop(uow_factory)
    _, reservation_id = hold_for(uow_factory, shop, (2,))
    payment_flows.create_checkout(reservation_id, deps, final_attempt=False)
    session_id = session_of(stripe_fake, reservation_id)["id"]
    stripe_fake.complete_checkout(session_id, async_payment=True)
    completed = f"evt_{uuid.uuid4().hex}"
    outcome = payment_flows.process_event(completed, "checkout.session.completed", session_id, deps)
    assert outcome == "processing"
    return shop, reservation_id, session_id


def test_a_delayed_payment_that_failed_without_its_webhook_gives_the_units_back(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe, published: Published
) -> None:
    # Given a bank payment that was processing and then failed, whose async_payment_failed webhook was lost
    shop, reservation_id, session_id = _delayed_payment_processing(uow_factory, deps, stripe_fake)
    stripe_fake.fail_async_payment(session_id)
    _age_payment(uow_factory, reservation_id, minutes=PROCESSING_DUE)

    result = reconcile_payments(deps, now=now())

    # Then it ends as the webhook would have ended it: payment failed, hold released, units back, no order
    assert "failed" in result.sessions_applied
    assert payments_of(uow_factory, reservation_id)[0].status == "failed"
    with uow_factory() as uow:
        status = uow.session.scalar(select(Reservation.status).where(Reservation.id == reservation_id))
    assert status == "released"
    assert remaining(uow_factory, shop.item_ids[0]) == 5
    assert _orders(uow_factory, reservation_id) == []


def test_a_delayed_payment_still_processing_is_left_to_its_own_events(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe
) -> None:
    shop, reservation_id, _ = _delayed_payment_processing(uow_factory, deps, stripe_fake)
    _age_payment(uow_factory, reservation_id, minutes=PROCESSING_DUE)

    result = reconcile_payments(deps, now=now())

    assert result.sessions_checked >= 1 and result.sessions_applied == []
    assert payments_of(uow_factory, reservation_id)[0].status == "processing"
    assert remaining(uow_factory, shop.item_ids[0]) == 3


def test_a_processing_delayed_payment_is_asked_about_less_often_than_an_open_session(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe
) -> None:
    # A bank debit can take days to settle, and its own webhook normally says how it ended
    _, reservation_id, session_id = _delayed_payment_processing(uow_factory, deps, stripe_fake)

    def asked() -> int:
        return len([c for c in stripe_fake.calls(f"/v1/checkout/sessions/{session_id}") if c.method == "GET"])

    _age_payment(uow_factory, reservation_id, minutes=5)
    before = asked()
    reconcile_payments(deps, now=now())
    assert asked() == before  # five minutes: an open session would have been asked about

    _age_payment(uow_factory, reservation_id, minutes=PROCESSING_DUE)
    reconcile_payments(deps, now=now())
    assert asked() > before


def test_an_open_session_is_only_asked_about_again_after_a_while(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe
) -> None:
    shop = open_shop(uow_factory)
    _, reservation_id = hold_for(uow_factory, shop)
    payment_flows.create_checkout(reservation_id, deps, final_attempt=False)
    session_id = session_of(stripe_fake, reservation_id)["id"]
    _age_payment(uow_factory, reservation_id)

    reconcile_payments(deps, now=now())
    asked = len([c for c in stripe_fake.calls(f"/v1/checkout/sessions/{session_id}") if c.method == "GET"])
    reconcile_payments(deps, now=now())  # a minute later: not due again yet
    asked_again = len(
        [c for c in stripe_fake.calls(f"/v1/checkout/sessions/{session_id}") if c.method == "GET"]
    )

    assert asked >= 1 and asked_again == asked
    assert _orders(uow_factory, reservation_id) == []


def test_a_hold_whose_checkout_task_was_lost_gets_it_published_again(
    uow_factory: UowFactory, deps: Deps, published: Published
) -> None:
    # Given a hold made two minutes ago whose CREATE_CHECKOUT job never reached a worker
    shop = open_shop(uow_factory)
    _, reservation_id = hold_for(uow_factory, shop)
    with uow_factory() as uow:
        uow.session.execute(
            update(Reservation)
            .where(Reservation.id == reservation_id)
            .values(created_at=now() - timedelta(minutes=2))
        )
        uow.commit()

    reconcile_payments(deps, now=now())

    assert any(j.task == CREATE_CHECKOUT and j.args == (str(reservation_id),) for j in published.jobs)


def test_a_refund_whose_task_was_lost_is_published_again(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe, published: Published
) -> None:
    shop = open_shop(uow_factory)
    _, reservation_id = hold_for(uow_factory, shop)
    payment_flows.create_checkout(reservation_id, deps, final_attempt=False)
    (payment,) = payments_of(uow_factory, reservation_id)
    with uow_factory() as uow:
        refund_id = uow.refunds.request(payment, order_id=None, reason="operator", now=now())
        assert refund_id is not None
        uow.session.execute(
            update(Refund).where(Refund.id == refund_id).values(updated_at=now() - timedelta(minutes=15))
        )
        uow.commit()

    reconcile_payments(deps, now=now())
    reconcile_payments(deps, now=now())  # not again right away: it was just republished

    assert [j for j in published.jobs if j.task == EXECUTE_REFUND and j.args == (refund_id,)] != []
    assert len([j for j in published.jobs if j.task == EXECUTE_REFUND and j.args == (refund_id,)]) == 1


def test_an_open_session_whose_hold_was_released_is_closed(
    uow_factory: UowFactory, deps: Deps, stripe_fake: FakeStripe, published: Published
) -> None:
    # Given a released hold whose EXPIRE_CHECKOUT job never ran (the session is still open at Stripe)
    shop = open_shop(uow_factory)
    _, reservation_id = hold_for(uow_factory, shop)
    payment_flows.create_checkout(reservation_id, deps, final_attempt=False)
    session_id = session_of(stripe_fake, reservation_id)["id"]
    with uow_factory() as uow:
        uow.session.execute(
            update(Reservation).where(Reservation.id == reservation_id).values(status="released")
        )
        uow.commit()
    _age_payment(uow_factory, reservation_id)

    result = reconcile_payments(deps, now=now())

    assert "expire_requested" in result.sessions_applied
    assert any(j.task == EXPIRE_CHECKOUT and j.args == (session_id,) for j in published.jobs)
